import Glibc
import WeftWire

/// Receive-side coalescing for the TUN, the counterpart of GRO: consecutive decapsulated TCP
/// segments of one flow (in order, same headers but for length, ID and sequence) become one
/// super packet written with a single `writev` and a virtio header asking the kernel for TSO
/// semantics, so the kernel's stack handles one large packet instead of dozens of small ones.
///
/// A segment joins only when Linux's own GRO would merge it: IPv4 without options, not a fragment,
/// equal TOS, TTL, DF, addresses, ports, acknowledgement, window and TCP options, the next
/// sequence number, flags ACK (PSH allowed on the last), a payload no larger than the first's, and
/// a valid checksum (the merged packet's checksum is completed by the kernel, so each segment's is
/// checked here first). The buffers stay where recvmmsg left them; only the first segment's
/// headers are rewritten. One coalescer per receive loop; it holds pointers into the loop's
/// receive batch, so a group must be flushed before that batch is reused.
struct VTEPCoalescer: ~Copyable {
  /// Segments per super packet at most (as UDP GRO and TSO).
  static let maxSegments = 64

  private let vectors: UnsafeMutablePointer<iovec>
  /// Segments in the current group (0: none).
  private(set) var count = 0
  /// The VNI of the group.
  private(set) var vni: UInt32 = 0
  /// The first segment's datagram (its inner packet at ``VTEPCodec/innerOffset``).
  private var first = UnsafeMutableRawBufferPointer(start: nil, count: 0)
  private var firstLength = 0
  private var tcpHeader = 0
  private var segment = 0
  private var total = 0
  private var nextSequence: UInt32 = 0
  private var closed = false
  private var push = false

  init() {
    self.vectors = .allocate(capacity: Self.maxSegments)
  }

  deinit { self.vectors.deallocate() }

  /// Adds the decapsulated inner packet of `length` bytes at `datagram[innerOffset...]` of network
  /// `vni` to the current group, or starts a group when there is none. False when it cannot join:
  /// flush the group, then offer it again (a packet that cannot start a group is written alone).
  mutating func append(_ datagram: UnsafeMutableRawBufferPointer, length: Int, vni: UInt32, mtu: Int) -> Bool
  {
    guard length <= mtu, self.count < Self.maxSegments else { return false }
    let ip = UnsafeRawBufferPointer(
      rebasing: datagram[VTEPCodec.innerOffset..<(VTEPCodec.innerOffset + length)])
    guard let tcpHeader = Self.eligibleTCPHeader(ip) else { return false }
    let payload = length - 20 - tcpHeader
    let sequence = VTEPCodec.load32(ip, 24)
    let flags = ip[33]
    if self.count == 0 {
      guard flags == 0x10 else { return false }  // a PSH segment ends a group; alone it gains nothing
      self.vni = vni
      self.first = datagram
      self.firstLength = length
      self.tcpHeader = tcpHeader
      self.segment = payload
      self.total = length
      self.nextSequence = sequence &+ UInt32(payload)
      self.closed = false
      self.push = false
      self.vectors[0] = iovec(
        iov_base: datagram.baseAddress! + (VTEPCodec.innerOffset - VTEPCodec.virtioHeaderLength),
        iov_len: VTEPCodec.virtioHeaderLength + length)
      self.count = 1
      return true
    }
    let head = UnsafeRawBufferPointer(
      rebasing: self.first[VTEPCodec.innerOffset..<(VTEPCodec.innerOffset + self.firstLength)])
    guard !self.closed, vni == self.vni, tcpHeader == self.tcpHeader, payload <= self.segment,
      sequence == self.nextSequence, self.total + payload <= 65_535,
      Self.sameFlow(head, ip, tcpHeader: tcpHeader)
    else { return false }
    self.vectors[self.count] = iovec(
      iov_base: UnsafeMutableRawPointer(mutating: ip.baseAddress! + 20 + tcpHeader), iov_len: payload)
    self.count += 1
    self.total += payload
    self.nextSequence = sequence &+ UInt32(payload)
    if flags & 0x08 != 0 {
      self.push = true
      self.closed = true
    }
    if payload < self.segment { self.closed = true }
    return true
  }

  /// Ends the current group: writes the first segment's virtio header and rewritten headers, and
  /// returns the vectors to write as one packet (empty when there is no group).
  mutating func finish() -> UnsafeBufferPointer<iovec> {
    let count = self.count
    guard count > 0 else { return UnsafeBufferPointer(start: self.vectors, count: 0) }
    self.count = 0
    let h = VTEPCodec.innerOffset - VTEPCodec.virtioHeaderLength
    for i in h..<VTEPCodec.innerOffset { self.first[i] = 0 }
    guard count > 1 else { return UnsafeBufferPointer(start: self.vectors, count: 1) }
    let ip = UnsafeMutableRawBufferPointer(rebasing: self.first[VTEPCodec.innerOffset...])
    VTEPSegmenter.store16(ip, 2, UInt16(self.total))
    VTEPSegmenter.store16(ip, 10, 0)
    var ipSum = Checksum()
    ipSum.add(bytes: UnsafeRawBufferPointer(rebasing: ip[0..<20]))
    VTEPSegmenter.store16(ip, 10, ipSum.value)
    if self.push { ip[33] |= 0x08 }
    // With NEEDS_CSUM the field carries the pseudo-header sum, uncomplemented; the kernel adds
    // the rest (or each segment's, if it ever resegments).
    var pseudo = Checksum()
    pseudo.add(bytes: UnsafeRawBufferPointer(rebasing: ip[12..<20]))
    pseudo.add(UInt16(6))
    pseudo.add(UInt16(self.total - 20))
    VTEPSegmenter.store16(ip, 36, pseudo.folded)
    func put16(_ value: Int, _ at: Int) {
      self.first[h + at] = UInt8(value & 0xff)
      self.first[h + at + 1] = UInt8(value >> 8 & 0xff)
    }
    self.first[h] = VirtioHeader.needsChecksum
    self.first[h + 1] = VirtioHeader.gsoTCPv4
    put16(20 + self.tcpHeader, 2)
    put16(self.segment, 4)
    put16(20, 6)
    put16(16, 8)
    return UnsafeBufferPointer(start: self.vectors, count: count)
  }

  /// The TCP header length when `ip` may be coalesced at all: IPv4 without options, TCP, not a
  /// fragment, ACK with at most PSH besides, some payload, a checksum that verifies.
  static func eligibleTCPHeader(_ ip: UnsafeRawBufferPointer) -> Int? {
    guard ip.count >= 40, ip[0] == 0x45, ip[9] == 6 else { return nil }
    guard (UInt16(ip[6]) << 8 | UInt16(ip[7])) & 0x3fff == 0 else { return nil }
    let total = Int(ip[2]) << 8 | Int(ip[3])
    guard total == ip.count else { return nil }
    let tcpHeader = Int(ip[32] >> 4) * 4
    guard tcpHeader >= 20, ip.count > 20 + tcpHeader else { return nil }
    guard ip[33] & ~0x08 == 0x10 else { return nil }
    var sum = Checksum()
    sum.add(bytes: UnsafeRawBufferPointer(rebasing: ip[12..<20]))
    sum.add(UInt16(6))
    sum.add(UInt16(ip.count - 20))
    sum.add(bytes: UnsafeRawBufferPointer(rebasing: ip[20...]))
    return sum.value == 0 ? tcpHeader : nil
  }

  /// Whether two segments share everything GRO requires to be equal.
  static func sameFlow(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, tcpHeader: Int) -> Bool {
    // TOS; flags and fragment field (DF); TTL; protocol; addresses.
    guard a[1] == b[1], a[6] == b[6], a[8] == b[8], VTEPCodec.load32(a, 12) == VTEPCodec.load32(b, 12),
      VTEPCodec.load32(a, 16) == VTEPCodec.load32(b, 16)
    else { return false }
    // Ports; acknowledgement; window.
    guard VTEPCodec.load32(a, 20) == VTEPCodec.load32(b, 20),
      VTEPCodec.load32(a, 28) == VTEPCodec.load32(b, 28),
      a[34] == b[34], a[35] == b[35]
    else { return false }
    // Options (timestamps included).
    var i = 40
    while i < 20 + tcpHeader {
      if a[i] != b[i] { return false }
      i += 1
    }
    return true
  }
}
