import NIOCore

/// An ICMP for IPv4 message (RFC 792): type, code, checksum, the four message-specific bytes
/// and the rest.
public struct ICMPv4Message: Hashable, Sendable {
  /// Echo reply.
  public static let echoReply: UInt8 = 0
  /// Destination unreachable (code 4: fragmentation needed and DF set).
  public static let destinationUnreachable: UInt8 = 3
  /// Redirect.
  public static let redirect: UInt8 = 5
  /// Echo request.
  public static let echoRequest: UInt8 = 8
  /// Time exceeded.
  public static let timeExceeded: UInt8 = 11
  /// Parameter problem.
  public static let parameterProblem: UInt8 = 12
  /// The destination-unreachable code for "fragmentation needed and DF set".
  public static let codeFragmentationNeeded: UInt8 = 4
  /// Largest IPv4 packet an ICMP error should make (RFC 1812 §4.3.2.3).
  public static let maximumErrorPacketLength = 576

  /// Message type.
  public var type: UInt8
  /// Message code.
  public var code: UInt8
  /// The checksum as received; `write(to:)` computes a fresh one.
  public var checksum: UInt16
  /// The four bytes after the checksum (identifier/sequence, next-hop MTU, pointer, unused...).
  public var restOfHeader: UInt32
  /// Everything after the 8-byte header (for errors: the quoted packet). A slice when decoded.
  public var payload: ByteBuffer

  /// Length of the header.
  public static let headerLength = 8

  /// Creates a message; `checksum` starts at zero and is computed on write.
  public init(type: UInt8, code: UInt8, restOfHeader: UInt32 = 0, payload: ByteBuffer = ByteBuffer()) {
    self.type = type
    self.code = code
    self.checksum = 0
    self.restOfHeader = restOfHeader
    self.payload = payload
  }

  /// Decodes a message (all input bytes are the message). Throws `.truncated` below 8 bytes and
  /// `.badChecksum` when `verifyChecksum` is set and the checksum does not verify.
  public init(decoding buffer: ByteBuffer, verifyChecksum: Bool = true) throws(WireError) {
    var r = WireReader(buffer, layer: "icmp")
    self.type = try r.u8("type")
    self.code = try r.u8("code")
    self.checksum = try r.u16("checksum")
    self.restOfHeader = try r.u32("rest of header")
    self.payload = r.rest()
    if verifyChecksum && Checksum.compute(buffer) != 0 {
      throw WireError(.badChecksum, layer: "icmp", "checksum \(hex16(self.checksum)) does not verify")
    }
  }

  /// True for error messages (which must never trigger another error).
  public var isError: Bool {
    [Self.destinationUnreachable, Self.redirect, Self.timeExceeded, Self.parameterProblem, 4].contains(
      self.type)
  }

  /// The next-hop MTU of a "fragmentation needed" message (RFC 1191), else `nil`.
  public var nextHopMTU: UInt16? {
    guard self.type == Self.destinationUnreachable, self.code == Self.codeFragmentationNeeded else {
      return nil
    }
    return UInt16(truncatingIfNeeded: self.restOfHeader)
  }

  /// Writes the message with a freshly computed checksum.
  public func write(to buffer: inout ByteBuffer) {
    let start = buffer.writerIndex
    buffer.writeInteger(self.type)
    buffer.writeInteger(self.code)
    buffer.writeInteger(UInt16(0))
    buffer.writeInteger(self.restOfHeader)
    buffer.writeImmutableBuffer(self.payload)
    let c = Checksum.compute(buffer.getSlice(at: start, length: buffer.writerIndex - start) ?? ByteBuffer())
    buffer.setInteger(c, at: start + 2)
  }

  /// The encoded message.
  public var bytes: ByteBuffer {
    var b = ByteBuffer()
    self.write(to: &b)
    return b
  }

  /// A "fragmentation needed and DF set" message (type 3 code 4, RFC 792/1191) quoting the
  /// start of `offending`: as much as keeps the reply IPv4 packet within 576 bytes, which is
  /// always the IP header plus at least 8 bytes.
  public static func fragmentationNeeded(quoting offending: ByteBuffer, nextHopMTU: UInt16) -> ICMPv4Message {
    let room = Self.maximumErrorPacketLength - IPv4Packet.minimumHeaderLength - Self.headerLength
    let quote = offending.getSlice(at: offending.readerIndex, length: min(room, offending.readableBytes))
    return ICMPv4Message(
      type: Self.destinationUnreachable, code: Self.codeFragmentationNeeded, restOfHeader: UInt32(nextHopMTU),
      payload: quote ?? ByteBuffer())
  }

  /// The IPv4 packet from `source` back to the sender of `offending` (a whole IPv4 packet)
  /// saying it must fit `nextHopMTU`.
  ///
  /// Throws when `offending` does not decode as IPv4 (its checksum is not checked), and
  /// `.unsupported` when RFC 1122 §3.2.2 forbids the reply: `offending` is itself an ICMP error,
  /// a non-initial fragment, or from a multicast, broadcast or unspecified source.
  public static func fragmentationNeededPacket(
    for offending: ByteBuffer, from source: IPv4Address, nextHopMTU: UInt16, ttl: UInt8 = 64
  ) throws(WireError) -> IPv4Packet {
    let original = try IPv4Packet(decoding: offending, verifyChecksum: false)
    guard original.fragmentOffset == 0 else {
      throw WireError(.unsupported, layer: "icmp", "no ICMP error for a non-initial fragment")
    }
    let s = original.source.value
    guard s != 0, s != 0xFFFF_FFFF, s >> 28 != 0xE else {
      throw WireError(.unsupported, layer: "icmp", "no ICMP error to source \(original.source)")
    }
    if original.protocol == .icmp,
      let t = original.payload.getInteger(at: original.payload.readerIndex, as: UInt8.self),
      ICMPv4Message(type: t, code: 0).isError
    {
      throw WireError(.unsupported, layer: "icmp", "no ICMP error about an ICMP error")
    }
    let message = Self.fragmentationNeeded(quoting: offending, nextHopMTU: nextHopMTU)
    return IPv4Packet(
      source: source, destination: original.source, protocol: .icmp, payload: message.bytes, ttl: ttl)
  }
}
