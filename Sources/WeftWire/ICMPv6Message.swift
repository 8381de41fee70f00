import NIOCore

/// An ICMPv6 message (RFC 4443): type, code, checksum, the four message-specific bytes and the
/// rest.
public struct ICMPv6Message: Hashable, Sendable {
  /// Destination unreachable.
  public static let destinationUnreachable: UInt8 = 1
  /// Packet too big.
  public static let packetTooBig: UInt8 = 2
  /// Time exceeded.
  public static let timeExceeded: UInt8 = 3
  /// Parameter problem.
  public static let parameterProblem: UInt8 = 4
  /// Echo request.
  public static let echoRequest: UInt8 = 128
  /// Echo reply.
  public static let echoReply: UInt8 = 129
  /// Neighbor solicitation.
  public static let neighborSolicitation: UInt8 = 135
  /// Neighbor advertisement.
  public static let neighborAdvertisement: UInt8 = 136
  /// The IPv6 minimum MTU, which bounds an error packet (RFC 4443 §2.4(c)).
  public static let minimumMTU = 1280

  /// Message type.
  public var type: UInt8
  /// Message code.
  public var code: UInt8
  /// The checksum as received; writers compute a fresh one.
  public var checksum: UInt16
  /// The four bytes after the checksum (MTU, pointer, identifier/sequence, unused...).
  public var body: UInt32
  /// Everything after the 8-byte header (for errors: the quoted packet). A slice when decoded.
  public var payload: ByteBuffer

  /// Length of the header.
  public static let headerLength = 8

  /// Creates a message; `checksum` starts at zero and is computed on write.
  public init(type: UInt8, code: UInt8, body: UInt32 = 0, payload: ByteBuffer = ByteBuffer()) {
    self.type = type
    self.code = code
    self.checksum = 0
    self.body = body
    self.payload = payload
  }

  /// Decodes a message (all input bytes are the message); throws `.truncated` below 8 bytes.
  /// The checksum needs the IPv6 pseudo-header: see `isChecksumValid(source:destination:)`.
  public init(decoding buffer: ByteBuffer) throws(WireError) {
    var r = WireReader(buffer, layer: "icmpv6")
    self.type = try r.u8("type")
    self.code = try r.u8("code")
    self.checksum = try r.u16("checksum")
    self.body = try r.u32("message body")
    self.payload = r.rest()
  }

  /// True for error messages (types 0-127).
  public var isError: Bool { self.type < 128 }

  /// The MTU of a Packet Too Big message, else `nil`.
  public var mtu: UInt32? { self.type == Self.packetTooBig ? self.body : nil }

  /// Length of the message.
  public var length: Int { Self.headerLength + self.payload.readableBytes }

  private func sum(source: IPv6Address, destination: IPv6Address, checksum: UInt16) -> Checksum {
    var c = Checksum()
    c.addPseudoHeader(
      source: .v6(source), destination: .v6(destination), protocol: .icmpv6, length: self.length)
    c.add(UInt16(self.type) << 8 | UInt16(self.code))
    c.add(checksum)
    c.add(self.body)
    c.add(self.payload)
    return c
  }

  /// The checksum over the IPv6 pseudo-header and the message.
  public func computeChecksum(source: IPv6Address, destination: IPv6Address) -> UInt16 {
    self.sum(source: source, destination: destination, checksum: 0).value
  }

  /// True when the received checksum verifies for `source` and `destination`.
  public func isChecksumValid(source: IPv6Address, destination: IPv6Address) -> Bool {
    self.sum(source: source, destination: destination, checksum: self.checksum).value == 0
  }

  /// Writes the message with a checksum for `source` and `destination`.
  public func write(to buffer: inout ByteBuffer, source: IPv6Address, destination: IPv6Address) {
    buffer.writeInteger(self.type)
    buffer.writeInteger(self.code)
    buffer.writeInteger(self.computeChecksum(source: source, destination: destination))
    buffer.writeInteger(self.body)
    buffer.writeImmutableBuffer(self.payload)
  }

  /// The encoded message.
  public func bytes(source: IPv6Address, destination: IPv6Address) -> ByteBuffer {
    var b = ByteBuffer()
    b.reserveCapacity(self.length)
    self.write(to: &b, source: source, destination: destination)
    return b
  }

  /// A Packet Too Big message (type 2, RFC 4443 §3.2) quoting as much of `offending` as keeps
  /// the reply IPv6 packet (with no extension headers) within 1280 bytes.
  public static func packetTooBig(quoting offending: ByteBuffer, mtu: UInt32) -> ICMPv6Message {
    let room = Self.minimumMTU - IPv6Packet.fixedHeaderLength - Self.headerLength
    let quote = offending.getSlice(at: offending.readerIndex, length: min(room, offending.readableBytes))
    return ICMPv6Message(type: Self.packetTooBig, code: 0, body: mtu, payload: quote ?? ByteBuffer())
  }

  /// The IPv6 packet from `source` back to the sender of `offending` (a whole IPv6 packet)
  /// saying it must fit `mtu`.
  ///
  /// Throws when `offending` does not decode as IPv6, and `.unsupported` when RFC 4443 §2.4(e)
  /// forbids the reply: `offending` is itself an ICMPv6 error, or from a multicast or
  /// unspecified source. (A multicast destination is allowed for Packet Too Big.)
  public static func packetTooBigPacket(
    for offending: ByteBuffer, from source: IPv6Address, mtu: UInt32, hopLimit: UInt8 = 64
  ) throws(WireError) -> IPv6Packet {
    let original = try IPv6Packet(decoding: offending)
    guard original.source != .any, original.source.high >> 56 != 0xFF else {
      throw WireError(.unsupported, layer: "icmpv6", "no ICMPv6 error to source \(original.source)")
    }
    if original.upperLayerProtocol == .icmpv6, !original.isFragment || original.fragment?.offset == 0,
      let t = original.payload.getInteger(at: original.payload.readerIndex, as: UInt8.self), t < 128
    {
      throw WireError(.unsupported, layer: "icmpv6", "no ICMPv6 error about an ICMPv6 error")
    }
    let message = Self.packetTooBig(quoting: offending, mtu: mtu)
    return IPv6Packet(
      source: source, destination: original.source, upperLayerProtocol: .icmpv6,
      payload: message.bytes(source: source, destination: original.source), hopLimit: hopLimit)
  }
}
