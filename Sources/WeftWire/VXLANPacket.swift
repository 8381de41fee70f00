import NIOCore

/// A VXLAN packet (RFC 7348 §5): the 8-byte header and the inner Ethernet frame, i.e. the
/// payload of the outer UDP datagram.
public struct VXLANPacket: Hashable, Sendable {
  /// Length of the header.
  public static let headerLength = 8
  /// The IANA-assigned UDP destination port.
  public static let defaultPort: UInt16 = 4789
  /// The I flag: the VNI is valid. Must be set.
  public static let flagI: UInt8 = 0x08

  /// The network identifier.
  public var vni: VNI
  /// The inner Ethernet frame (a slice of the input when decoded).
  public var payload: ByteBuffer

  /// Creates a packet.
  public init(vni: VNI, payload: ByteBuffer) {
    self.vni = vni
    self.payload = payload
  }

  /// Creates a packet; throws `.badField` when `vni` does not fit 24 bits.
  public init(vni: UInt32, payload: ByteBuffer) throws(WireError) {
    self.init(vni: try VNI(vni), payload: payload)
  }

  /// Decodes a UDP payload. Throws `.truncated` below 8 bytes and `.badField` when the I flag is
  /// clear; all reserved bits (the other flag bits, the 24 reserved bits after the flags, the
  /// last byte) are ignored.
  public init(decoding buffer: ByteBuffer) throws(WireError) {
    var r = WireReader(buffer, layer: "vxlan")
    let first = try r.u32("flags")
    guard UInt8(truncatingIfNeeded: first >> 24) & Self.flagI != 0 else {
      throw WireError(.badField, layer: "vxlan", "I flag clear (flags \(first >> 24))")
    }
    let second = try r.u32("VNI")
    self.vni = VNI(masking: second >> 8)
    self.payload = r.rest()
  }

  /// Writes the header: I flag set, every reserved bit zero.
  public func writeHeader(to buffer: inout ByteBuffer) {
    buffer.writeInteger(UInt32(Self.flagI) << 24)
    buffer.writeInteger(self.vni.rawValue << 8)
  }

  /// Writes the header and the inner frame.
  public func write(to buffer: inout ByteBuffer) {
    self.writeHeader(to: &buffer)
    buffer.writeImmutableBuffer(self.payload)
  }
}
