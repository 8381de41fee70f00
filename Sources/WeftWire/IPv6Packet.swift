import NIOCore

/// An IPv6 packet (RFC 8200): the fixed header, the extension-header chain and the upper-layer
/// payload.
public struct IPv6Packet: Hashable, Sendable {
  /// Traffic class.
  public var trafficClass: UInt8
  /// Flow label (20 bits).
  public var flowLabel: UInt32
  /// Hop limit.
  public var hopLimit: UInt8
  /// Source address.
  public var source: IPv6Address
  /// Destination address.
  public var destination: IPv6Address
  /// Extension headers in wire order.
  public var extensionHeaders: [IPv6ExtensionHeader]
  /// The protocol after the last extension header (for a non-first fragment, the fragment's
  /// Next Header: `payload` then holds fragment data, not that protocol's header).
  public var upperLayerProtocol: IPProtocol
  /// The bytes after the extension headers, up to the payload length (a slice of the input).
  public var payload: ByteBuffer

  /// Length of the fixed header.
  public static let fixedHeaderLength = 40
  /// Most extension headers the decoder walks.
  public static let maximumExtensionHeaders = 16

  /// Creates a packet.
  public init(
    source: IPv6Address, destination: IPv6Address, upperLayerProtocol: IPProtocol, payload: ByteBuffer,
    hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0,
    extensionHeaders: [IPv6ExtensionHeader] = []
  ) {
    self.trafficClass = trafficClass
    self.flowLabel = flowLabel & 0xFFFFF
    self.hopLimit = hopLimit
    self.source = source
    self.destination = destination
    self.extensionHeaders = extensionHeaders
    self.upperLayerProtocol = upperLayerProtocol
    self.payload = payload
  }

  /// Decodes a packet, walking Hop-by-Hop, Routing, Fragment, Destination Options, AH (and the
  /// Mobility/HIP/Shim6 headers, which share the generic layout) to the upper-layer protocol.
  /// Bytes beyond the payload length are dropped.
  ///
  /// Throws `.badField` for a wrong version, a Hop-by-Hop header not first, a repeated header
  /// (Destination Options may appear twice) or too many headers; `.truncated` when the input is
  /// shorter than the payload length or a header runs past it; `.unsupported` for jumbograms.
  public init(decoding buffer: ByteBuffer) throws(WireError) {
    var r = WireReader(buffer, layer: "ipv6")
    let word = try r.u32("version")
    guard word >> 28 == 6 else { throw WireError(.badField, layer: "ipv6", "version \(word >> 28)") }
    self.trafficClass = UInt8(truncatingIfNeeded: word >> 20)
    self.flowLabel = word & 0xFFFFF
    let payloadLength = Int(try r.u16("payload length"))
    let first = IPProtocol(try r.u8("next header"))
    self.hopLimit = try r.u8("hop limit")
    self.source = try r.ipv6("source")
    self.destination = try r.ipv6("destination")
    if payloadLength == 0 && first == .hopByHop {
      throw WireError(.unsupported, layer: "ipv6", "jumbogram (payload length 0 with hop-by-hop)")
    }
    guard payloadLength <= r.remaining else {
      throw WireError(
        .truncated, layer: "ipv6", "payload length \(payloadLength), \(r.remaining) bytes available")
    }
    var p = WireReader(try r.slice("payload", length: payloadLength), layer: "ipv6")
    var headers: [IPv6ExtensionHeader] = []
    var proto = first
    var destinationOptions = 0
    while IPv6ExtensionHeader.isExtension(proto) {
      guard headers.count < Self.maximumExtensionHeaders else {
        throw WireError(
          .badField, layer: "ipv6", "more than \(Self.maximumExtensionHeaders) extension headers")
      }
      if proto == .hopByHop && !headers.isEmpty {
        throw WireError(.badField, layer: "ipv6", "hop-by-hop header not first")
      }
      if proto == .ipv6DestinationOptions {
        destinationOptions += 1
        guard destinationOptions <= 2 else {
          throw WireError(.badField, layer: "ipv6", "more than two destination options headers")
        }
      } else if headers.contains(where: { $0.type == proto }) {
        throw WireError(.badField, layer: "ipv6", "repeated extension header \(proto)")
      }
      let next = IPProtocol(try p.u8("extension header next header"))
      let lengthByte = Int(try p.u8("extension header length"))
      let length: Int
      switch proto {
      case .ipv6Fragment: length = 8
      case .ah: length = (lengthByte + 2) * 4
      default: length = (lengthByte + 1) * 8
      }
      let body = try p.slice("extension header \(proto)", length: length - 2)
      let header = IPv6ExtensionHeader(type: proto, body: body)
      headers.append(header)
      proto = next
      if let f = header.fragmentFields, f.offset != 0 {
        break  // a non-first fragment carries data, not the following headers
      }
    }
    self.extensionHeaders = headers
    self.upperLayerProtocol = proto
    self.payload = p.rest()
  }

  /// Length of the fixed header plus the extension headers.
  public var headerLength: Int {
    self.extensionHeaders.reduce(Self.fixedHeaderLength) { $0 + $1.length }
  }

  /// The Payload Length field: extension headers plus payload.
  public var payloadLength: Int { self.headerLength - Self.fixedHeaderLength + self.payload.readableBytes }

  /// The Next Header field of the fixed header.
  public var nextHeader: IPProtocol { self.extensionHeaders.first?.type ?? self.upperLayerProtocol }

  /// The Fragment header's fields, if there is one.
  public var fragment: IPv6Fragment? {
    for h in self.extensionHeaders { if let f = h.fragmentFields { return f } }
    return nil
  }

  /// True when a Fragment header is present with a non-zero offset or the M flag set.
  public var isFragment: Bool {
    guard let f = self.fragment else { return false }
    return f.offset != 0 || f.moreFragments
  }

  /// Writes the fixed header and extension headers for an upper-layer payload of
  /// `payloadLength` bytes.
  ///
  /// - Precondition: the Payload Length fits 16 bits.
  public func writeHeader(to buffer: inout ByteBuffer, payloadLength: Int) {
    let total = self.headerLength - Self.fixedHeaderLength + payloadLength
    precondition(payloadLength >= 0 && total <= 0xFFFF, "IPv6 payload length \(total) exceeds 65535")
    buffer.writeInteger(UInt32(6) << 28 | UInt32(self.trafficClass) << 20 | self.flowLabel & 0xFFFFF)
    buffer.writeInteger(UInt16(total))
    buffer.writeInteger(self.nextHeader.rawValue)
    buffer.writeInteger(self.hopLimit)
    buffer.writeIPv6(self.source)
    buffer.writeIPv6(self.destination)
    for (i, h) in self.extensionHeaders.enumerated() {
      let next =
        i + 1 < self.extensionHeaders.count ? self.extensionHeaders[i + 1].type : self.upperLayerProtocol
      h.write(to: &buffer, next: next)
    }
  }

  /// Writes the whole packet.
  public func write(to buffer: inout ByteBuffer) {
    self.writeHeader(to: &buffer, payloadLength: self.payload.readableBytes)
    buffer.writeImmutableBuffer(self.payload)
  }

  /// The encoded packet.
  public var bytes: ByteBuffer {
    var b = ByteBuffer()
    b.reserveCapacity(self.headerLength + self.payload.readableBytes)
    self.write(to: &b)
    return b
  }
}

extension IPv6ExtensionHeader {
  /// The fragment fields when this is a well-formed Fragment header.
  public var fragmentFields: IPv6Fragment? {
    guard self.type == .ipv6Fragment,
      let word = self.body.getInteger(at: self.body.readerIndex, as: UInt16.self),
      let id = self.body.getInteger(at: self.body.readerIndex + 2, as: UInt32.self)
    else { return nil }
    return IPv6Fragment(offset: word >> 3, moreFragments: word & 1 == 1, identification: id)
  }
}

extension IPv6Packet {
  /// The destination an upper-layer pseudo-header uses (RFC 8200 §8.1): with a Routing header
  /// that has segments left, the last address of its route (type 0 and 2; Segment List[0] for
  /// a type 4 segment routing header); otherwise `destination`.
  public var finalDestination: IPv6Address {
    guard let rh = self.extensionHeaders.first(where: { $0.type == .ipv6Routing }) else {
      return self.destination
    }
    let b = rh.body
    guard let routingType = b.getInteger(at: b.readerIndex, as: UInt8.self),
      let segmentsLeft = b.getInteger(at: b.readerIndex + 1, as: UInt8.self), segmentsLeft > 0
    else { return self.destination }
    // The address list starts 6 bytes into the body (8 into the header) for all three types.
    let addresses = (b.readableBytes - 6) / 16
    let index: Int
    switch routingType {
    case 0, 2: index = addresses - 1
    case 4: index = 0
    default: return self.destination
    }
    guard index >= 0,
      let hi = b.getInteger(at: b.readerIndex + 6 + 16 * index, as: UInt64.self),
      let lo = b.getInteger(at: b.readerIndex + 14 + 16 * index, as: UInt64.self)
    else { return self.destination }
    return IPv6Address(high: hi, low: lo)
  }
}
