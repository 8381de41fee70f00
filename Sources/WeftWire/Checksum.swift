import NIOCore

/// The RFC 1071 Internet checksum: a 16-bit one's complement sum, accumulated incrementally.
///
/// Feed bytes in wire order with the `add` methods, in any number of pieces of any length; an
/// odd-length piece is handled, the next piece continues at the odd position. `value` is the
/// checksum to put on the wire; a region that already holds its checksum verifies when
/// `value == 0`.
public struct Checksum: Hashable, Sendable {
  /// The running sum (not yet folded or complemented).
  private var sum: UInt64 = 0
  /// True when an odd number of bytes has been added so far.
  private var odd = false

  /// Creates an empty checksum.
  public init() {}

  /// Adds the readable bytes of `buffer` without moving its reader index.
  public mutating func add(_ buffer: ByteBuffer) {
    buffer.withUnsafeReadableBytes { self.add(bytes: $0) }
  }

  /// Adds raw bytes.
  public mutating func add(bytes: UnsafeRawBufferPointer) {
    var i = 0
    let n = bytes.count
    if n == 0 { return }
    var s = self.sum
    if self.odd {
      // The previous piece ended mid-word: this byte is that word's low half.
      s &+= UInt64(bytes[0])
      i = 1
      self.odd = false
    }
    if n - i >= 64 {
      // The bulk: 64-bit words in the machine's order into four independent accumulators, each
      // with a count of its carries out (a one's complement sum is byte-order independent:
      // summed little-endian, the folded result is the big-endian one byte-swapped, RFC 1071
      // §2(B); and a carry out of bit 63 is worth 1, as 2^64 is 1 modulo 0xffff).
      var a0: UInt64 = 0
      var a1: UInt64 = 0
      var a2: UInt64 = 0
      var a3: UInt64 = 0
      var c0: UInt64 = 0
      var c1: UInt64 = 0
      var c2: UInt64 = 0
      var c3: UInt64 = 0
      let base = bytes.baseAddress!
      while n - i >= 32 {
        var carry: Bool
        (a0, carry) = a0.addingReportingOverflow(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        c0 &+= carry ? 1 : 0
        (a1, carry) = a1.addingReportingOverflow(base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
        c1 &+= carry ? 1 : 0
        (a2, carry) = a2.addingReportingOverflow(base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
        c2 &+= carry ? 1 : 0
        (a3, carry) = a3.addingReportingOverflow(base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
        c3 &+= carry ? 1 : 0
        i += 32
      }
      // Each accumulator as two 32-bit halves plus its carries: four values under 2^34.
      func halves(_ a: UInt64, _ c: UInt64) -> UInt64 { (a >> 32) &+ (a & 0xFFFF_FFFF) &+ c }
      var folded = halves(a0, c0) &+ halves(a1, c1) &+ halves(a2, c2) &+ halves(a3, c3)
      while folded >> 16 != 0 { folded = (folded & 0xFFFF) &+ (folded >> 16) }
      let word = UInt16(truncatingIfNeeded: folded)
      s &+= UInt64(word.bigEndian)
    }
    while n - i >= 8 {
      let v = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      s &+= (v >> 32) &+ (v & 0xFFFF_FFFF)
      i += 8
      if s >= 1 << 62 { s = (s & 0xFFFF_FFFF) &+ (s >> 32) }
    }
    while n - i >= 2 {
      s &+= UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
      i += 2
    }
    if i < n {
      s &+= UInt64(bytes[i]) << 8
      self.odd = true
    }
    self.sum = s
  }

  /// Adds a sequence of bytes.
  public mutating func add(octets: some Sequence<UInt8>) {
    let a = Array(octets)
    a.withUnsafeBytes { self.add(bytes: $0) }
  }

  /// Adds a 16-bit value as two bytes in network order.
  public mutating func add(_ word: UInt16) {
    self.sum &+= UInt64(self.odd ? word.byteSwapped : word)
  }

  /// Adds a 32-bit value as four bytes in network order.
  public mutating func add(_ word: UInt32) {
    self.add(UInt16(truncatingIfNeeded: word >> 16))
    self.add(UInt16(truncatingIfNeeded: word))
  }

  /// Adds the four bytes of an IPv4 address.
  public mutating func add(_ address: IPv4Address) { self.add(address.value) }

  /// Adds the sixteen bytes of an IPv6 address.
  public mutating func add(_ address: IPv6Address) {
    self.add(UInt32(truncatingIfNeeded: address.high >> 32))
    self.add(UInt32(truncatingIfNeeded: address.high))
    self.add(UInt32(truncatingIfNeeded: address.low >> 32))
    self.add(UInt32(truncatingIfNeeded: address.low))
  }

  /// Adds the bytes of either address family.
  public mutating func add(_ address: IPAddress) {
    switch address {
    case .v4(let a): self.add(a)
    case .v6(let a): self.add(a)
    }
  }

  /// Adds a transport pseudo-header: the IPv4 one of RFC 768/793 or the IPv6 one of RFC 8200 §8.1,
  /// chosen by the address family. `length` is the upper-layer length (header plus data).
  public mutating func addPseudoHeader(
    source: IPAddress, destination: IPAddress, protocol proto: IPProtocol, length: Int
  ) {
    // Both layouts reduce to the same one's complement sum: the addresses, the protocol
    // number as a 16-bit word and the length (32-bit for IPv6, whose high half is then zero
    // for any length that fits a 16-bit IPv4 field).
    self.add(source)
    self.add(destination)
    self.add(UInt16(proto.rawValue))
    self.add(UInt32(truncatingIfNeeded: length))
  }

  /// The folded sum before complementing.
  public var folded: UInt16 {
    var s = self.sum
    while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
    return UInt16(truncatingIfNeeded: s)
  }

  /// The checksum to put on the wire: the complement of the folded sum.
  public var value: UInt16 { ~self.folded }

  /// The checksum of `buffer`'s readable bytes.
  public static func compute(_ buffer: ByteBuffer) -> UInt16 {
    var c = Checksum()
    c.add(buffer)
    return c.value
  }

  /// RFC 1624 incremental update: the new checksum after one 16-bit field changes from `old` to
  /// `new`, without re-summing the rest.
  public static func adjust(_ checksum: UInt16, replacing old: UInt16, with new: UInt16) -> UInt16 {
    var c = Checksum()
    c.sum = UInt64(~checksum) &+ UInt64(~old) &+ UInt64(new)
    return c.value
  }
}
