import NIOCore

/// An IPv4 packet (RFC 791): the header fields, raw options and the payload.
public struct IPv4Packet: Hashable, Sendable {
  /// The type-of-service byte: DSCP in the upper six bits, ECN in the lower two.
  public var typeOfService: UInt8
  /// The identification field used to reassemble fragments.
  public var identification: UInt16
  /// The DF flag.
  public var dontFragment: Bool
  /// The MF flag.
  public var moreFragments: Bool
  /// The fragment offset in 8-byte units (13 bits).
  public var fragmentOffset: UInt16
  /// Time to live.
  public var ttl: UInt8
  /// The upper-layer protocol.
  public var `protocol`: IPProtocol
  /// The header checksum as received; `write(to:)` computes a fresh one.
  public var headerChecksum: UInt16
  /// Source address.
  public var source: IPv4Address
  /// Destination address.
  public var destination: IPv4Address
  /// Raw option bytes (a slice of the input when decoded); padded to 4 bytes on write.
  public var options: ByteBuffer
  /// The payload, exactly `totalLength - headerLength` bytes (a slice of the input when decoded).
  public var payload: ByteBuffer

  /// Length of a header without options.
  public static let minimumHeaderLength = 20
  /// Largest options area (IHL 15).
  public static let maximumOptionsLength = 40

  /// Creates a packet; `headerChecksum` starts at zero and is computed on write.
  public init(
    source: IPv4Address, destination: IPv4Address, protocol proto: IPProtocol, payload: ByteBuffer,
    ttl: UInt8 = 64, typeOfService: UInt8 = 0, identification: UInt16 = 0, dontFragment: Bool = false,
    moreFragments: Bool = false, fragmentOffset: UInt16 = 0, options: ByteBuffer = ByteBuffer()
  ) {
    self.typeOfService = typeOfService
    self.identification = identification
    self.dontFragment = dontFragment
    self.moreFragments = moreFragments
    self.fragmentOffset = fragmentOffset & 0x1FFF
    self.ttl = ttl
    self.protocol = proto
    self.headerChecksum = 0
    self.source = source
    self.destination = destination
    self.options = options
    self.payload = payload
  }

  /// Decodes a packet. Bytes after `totalLength` (link-layer padding) are dropped from `payload`.
  ///
  /// Throws `.badField` for a version other than 4 or an IHL below 5, `.truncated` when the input
  /// is shorter than the header or the total length, `.badLength` for a total length shorter than
  /// the header, and `.badChecksum` when `verifyChecksum` is set and the header does not verify.
  public init(decoding buffer: ByteBuffer, verifyChecksum: Bool = true) throws(WireError) {
    var r = WireReader(buffer, layer: "ipv4")
    let vihl = try r.u8("version")
    guard vihl >> 4 == 4 else { throw WireError(.badField, layer: "ipv4", "version \(vihl >> 4)") }
    let headerLength = Int(vihl & 0x0F) * 4
    guard headerLength >= Self.minimumHeaderLength else {
      throw WireError(.badField, layer: "ipv4", "IHL \(vihl & 0x0F) below 5")
    }
    guard buffer.readableBytes >= headerLength else {
      throw WireError(
        .truncated, layer: "ipv4", "header of \(headerLength) bytes, \(buffer.readableBytes) available")
    }
    self.typeOfService = try r.u8("type of service")
    let totalLength = Int(try r.u16("total length"))
    guard totalLength >= headerLength else {
      throw WireError(
        .badLength, layer: "ipv4", "total length \(totalLength) below header length \(headerLength)")
    }
    guard totalLength <= buffer.readableBytes else {
      throw WireError(
        .truncated, layer: "ipv4", "total length \(totalLength), \(buffer.readableBytes) bytes available")
    }
    self.identification = try r.u16("identification")
    let frag = try r.u16("flags")
    self.dontFragment = frag & 0x4000 != 0
    self.moreFragments = frag & 0x2000 != 0
    self.fragmentOffset = frag & 0x1FFF
    self.ttl = try r.u8("ttl")
    self.protocol = IPProtocol(try r.u8("protocol"))
    self.headerChecksum = try r.u16("checksum")
    self.source = try r.ipv4("source")
    self.destination = try r.ipv4("destination")
    self.options = try r.slice("options", length: headerLength - Self.minimumHeaderLength)
    self.payload = try r.slice("payload", length: totalLength - headerLength)
    if verifyChecksum {
      var c = Checksum()
      c.add(buffer.getSlice(at: buffer.readerIndex, length: headerLength) ?? ByteBuffer())
      guard c.value == 0 else {
        throw WireError(
          .badChecksum, layer: "ipv4", "header checksum \(hex16(self.headerChecksum)) does not verify")
      }
    }
  }

  /// Header length including options padded to a multiple of four.
  public var headerLength: Int { Self.minimumHeaderLength + (self.options.readableBytes + 3) / 4 * 4 }

  /// Header plus payload length.
  public var totalLength: Int { self.headerLength + self.payload.readableBytes }

  /// True when this is a fragment (MF set or a non-zero offset).
  public var isFragment: Bool { self.moreFragments || self.fragmentOffset != 0 }

  /// Writes the header for a payload of `payloadLength` bytes, with a freshly computed checksum.
  ///
  /// - Precondition: options are at most 40 bytes and the total length fits 16 bits.
  public func writeHeader(to buffer: inout ByteBuffer, payloadLength: Int) {
    let optionsLength = self.options.readableBytes
    precondition(optionsLength <= Self.maximumOptionsLength, "IPv4 options longer than 40 bytes")
    let headerLength = self.headerLength
    let total = headerLength + payloadLength
    precondition(payloadLength >= 0 && total <= 0xFFFF, "IPv4 total length \(total) exceeds 65535")
    let start = buffer.writerIndex
    buffer.writeInteger(UInt8(0x40 | headerLength / 4))
    buffer.writeInteger(self.typeOfService)
    buffer.writeInteger(UInt16(total))
    buffer.writeInteger(self.identification)
    let flags: UInt16 = (self.dontFragment ? 0x4000 : 0) | (self.moreFragments ? 0x2000 : 0)
    buffer.writeInteger(flags | self.fragmentOffset & 0x1FFF)
    buffer.writeInteger(self.ttl)
    buffer.writeInteger(self.protocol.rawValue)
    buffer.writeInteger(UInt16(0))
    buffer.writeIPv4(self.source)
    buffer.writeIPv4(self.destination)
    buffer.writeImmutableBuffer(self.options)
    buffer.writeRepeatingByte(0, count: headerLength - Self.minimumHeaderLength - optionsLength)
    var c = Checksum()
    c.add(buffer.getSlice(at: start, length: headerLength) ?? ByteBuffer())
    buffer.setInteger(c.value, at: start + 10)
  }

  /// Writes the header and payload.
  public func write(to buffer: inout ByteBuffer) {
    self.writeHeader(to: &buffer, payloadLength: self.payload.readableBytes)
    buffer.writeImmutableBuffer(self.payload)
  }

  /// The encoded packet.
  public var bytes: ByteBuffer {
    var b = ByteBuffer()
    b.reserveCapacity(self.totalLength)
    self.write(to: &b)
    return b
  }
}
