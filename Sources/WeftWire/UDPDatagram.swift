import NIOCore

/// A UDP datagram (RFC 768).
public struct UDPDatagram: Hashable, Sendable {
  /// Source port.
  public var sourcePort: UInt16
  /// Destination port.
  public var destinationPort: UInt16
  /// The checksum as received (0: none, IPv4 only); writers compute a fresh one.
  public var checksum: UInt16
  /// The payload, exactly `length - 8` bytes (a slice of the input when decoded).
  public var payload: ByteBuffer

  /// Length of the header.
  public static let headerLength = 8

  /// Creates a datagram; `checksum` starts at zero and is computed on write.
  public init(sourcePort: UInt16, destinationPort: UInt16, payload: ByteBuffer) {
    self.sourcePort = sourcePort
    self.destinationPort = destinationPort
    self.checksum = 0
    self.payload = payload
  }

  /// Decodes a datagram. Bytes after the Length field's extent are dropped.
  ///
  /// Throws `.truncated` for fewer than 8 bytes or fewer than Length, `.badLength` for a
  /// Length below 8. The checksum is not verified here (it needs the IP pseudo-header): use
  /// `isChecksumValid(source:destination:)`.
  public init(decoding buffer: ByteBuffer) throws(WireError) {
    var r = WireReader(buffer, layer: "udp")
    self.sourcePort = try r.u16("source port")
    self.destinationPort = try r.u16("destination port")
    let length = Int(try r.u16("length"))
    self.checksum = try r.u16("checksum")
    guard length >= Self.headerLength else {
      throw WireError(.badLength, layer: "udp", "length \(length) below 8")
    }
    guard length <= buffer.readableBytes else {
      throw WireError(.truncated, layer: "udp", "length \(length), \(buffer.readableBytes) bytes available")
    }
    self.payload = try r.slice("payload", length: length - Self.headerLength)
  }

  /// Header plus payload length: the Length field.
  public var length: Int { Self.headerLength + self.payload.readableBytes }

  /// The checksum for this datagram between `source` and `destination` (never 0: a computed
  /// zero is sent as `0xFFFF`, RFC 768 and RFC 8200 §8.1).
  public func computeChecksum(source: IPAddress, destination: IPAddress) -> UInt16 {
    var c = Checksum()
    c.addPseudoHeader(source: source, destination: destination, protocol: .udp, length: self.length)
    c.add(self.sourcePort)
    c.add(self.destinationPort)
    c.add(UInt16(truncatingIfNeeded: self.length))
    c.add(self.payload)
    let v = c.value
    return v == 0 ? 0xFFFF : v
  }

  /// True when the received checksum verifies, or is zero ("none") over IPv4.
  public func isChecksumValid(source: IPAddress, destination: IPAddress) -> Bool {
    if self.checksum == 0 { return source.isV4 }
    var c = Checksum()
    c.addPseudoHeader(source: source, destination: destination, protocol: .udp, length: self.length)
    c.add(self.sourcePort)
    c.add(self.destinationPort)
    c.add(UInt16(truncatingIfNeeded: self.length))
    c.add(self.checksum)
    c.add(self.payload)
    return c.value == 0
  }

  /// Writes the datagram with a checksum over the pseudo-header for `source` and
  /// `destination`; with `nil` addresses the checksum is zero ("none", valid for IPv4 only).
  ///
  /// - Precondition: the length fits 16 bits.
  public func write(to buffer: inout ByteBuffer, source: IPAddress? = nil, destination: IPAddress? = nil) {
    precondition(self.length <= 0xFFFF, "UDP length \(self.length) exceeds 65535")
    var sum: UInt16 = 0
    if let source, let destination {
      sum = self.computeChecksum(source: source, destination: destination)
    }
    buffer.writeInteger(self.sourcePort)
    buffer.writeInteger(self.destinationPort)
    buffer.writeInteger(UInt16(self.length))
    buffer.writeInteger(sum)
    buffer.writeImmutableBuffer(self.payload)
  }

  /// The encoded datagram (see `write(to:source:destination:)`).
  public func bytes(source: IPAddress? = nil, destination: IPAddress? = nil) -> ByteBuffer {
    var b = ByteBuffer()
    b.reserveCapacity(self.length)
    self.write(to: &b, source: source, destination: destination)
    return b
  }
}
