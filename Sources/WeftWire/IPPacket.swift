import NIOCore

/// An IPv4 or IPv6 packet, for code that handles both families alike.
public enum IPPacket: Hashable, Sendable {
  /// An IPv4 packet.
  case v4(IPv4Packet)
  /// An IPv6 packet.
  case v6(IPv6Packet)

  /// Decodes either family by the version nibble; throws `.badField` for other versions.
  public init(decoding buffer: ByteBuffer, verifyChecksum: Bool = true) throws(WireError) {
    guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else {
      throw WireError(.truncated, layer: "ip", "empty packet")
    }
    switch first >> 4 {
    case 4: self = .v4(try IPv4Packet(decoding: buffer, verifyChecksum: verifyChecksum))
    case 6: self = .v6(try IPv6Packet(decoding: buffer))
    default: throw WireError(.badField, layer: "ip", "version \(first >> 4)")
    }
  }

  /// Source address.
  public var source: IPAddress {
    switch self {
    case .v4(let p): .v4(p.source)
    case .v6(let p): .v6(p.source)
    }
  }

  /// Destination address.
  public var destination: IPAddress {
    switch self {
    case .v4(let p): .v4(p.destination)
    case .v6(let p): .v6(p.destination)
    }
  }

  /// The destination for upper-layer pseudo-headers (see `IPv6Packet.finalDestination`).
  public var finalDestination: IPAddress {
    switch self {
    case .v4(let p): .v4(p.destination)
    case .v6(let p): .v6(p.finalDestination)
    }
  }

  /// The upper-layer protocol (after IPv6 extension headers).
  public var upperLayerProtocol: IPProtocol {
    switch self {
    case .v4(let p): p.protocol
    case .v6(let p): p.upperLayerProtocol
    }
  }

  /// The upper-layer bytes.
  public var payload: ByteBuffer {
    switch self {
    case .v4(let p): p.payload
    case .v6(let p): p.payload
    }
  }

  /// True for any fragment (first or later).
  public var isFragment: Bool {
    switch self {
    case .v4(let p): p.isFragment
    case .v6(let p): p.isFragment
    }
  }

  /// Writes the packet.
  public func write(to buffer: inout ByteBuffer) {
    switch self {
    case .v4(let p): p.write(to: &buffer)
    case .v6(let p): p.write(to: &buffer)
    }
  }
}
