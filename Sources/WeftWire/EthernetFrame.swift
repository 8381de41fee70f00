import NIOCore

/// One IEEE 802.1Q / 802.1ad VLAN tag.
public struct VLANTag: Hashable, Sendable {
  /// The tag protocol identifier that introduced the tag (`.vlan`, `.qinq` or `.qinqLegacy`).
  public var tpid: EtherType
  /// Priority code point, 0...7.
  public var priority: UInt8
  /// Drop eligible indicator.
  public var dropEligible: Bool
  /// VLAN identifier, 0...4095.
  public var vid: UInt16

  /// Creates a tag; `priority` and `vid` are masked to 3 and 12 bits.
  public init(tpid: EtherType = .vlan, priority: UInt8 = 0, dropEligible: Bool = false, vid: UInt16) {
    self.tpid = tpid
    self.priority = priority & 0x7
    self.dropEligible = dropEligible
    self.vid = vid & 0x0FFF
  }

  /// The 16-bit tag control information field.
  public var tci: UInt16 {
    UInt16(self.priority & 0x7) << 13 | (self.dropEligible ? 0x1000 : 0) | (self.vid & 0x0FFF)
  }
}

/// An Ethernet II frame: addresses, any VLAN tags, EtherType and payload (no FCS).
public struct EthernetFrame: Hashable, Sendable {
  /// Destination MAC address.
  public var destination: MACAddress
  /// Source MAC address.
  public var source: MACAddress
  /// VLAN tags, outermost first.
  public var vlanTags: [VLANTag]
  /// The EtherType after any tags.
  public var etherType: EtherType
  /// Everything after the header (a slice of the decoded input; may include trailing padding).
  public var payload: ByteBuffer

  /// Length of the untagged header.
  public static let minimumHeaderLength = 14
  /// Most VLAN tags a decoder walks before giving up.
  public static let maximumVLANTags = 8

  /// Creates a frame.
  public init(
    destination: MACAddress, source: MACAddress, vlanTags: [VLANTag] = [], etherType: EtherType,
    payload: ByteBuffer
  ) {
    self.destination = destination
    self.source = source
    self.vlanTags = vlanTags
    self.etherType = etherType
    self.payload = payload
  }

  /// Decodes a frame, skipping (and recording) 802.1Q/802.1ad tags.
  ///
  /// Throws `.truncated` for short input, `.unsupported` for 802.3 length-field frames
  /// (EtherType below `0x0600`) and `.badField` for more than `maximumVLANTags` tags.
  public init(decoding buffer: ByteBuffer) throws(WireError) {
    var r = WireReader(buffer, layer: "ethernet")
    self.destination = try r.mac("destination")
    self.source = try r.mac("source")
    var type = EtherType(try r.u16("ethertype"))
    var tags: [VLANTag] = []
    while type.isVLANTag {
      guard tags.count < Self.maximumVLANTags else {
        throw WireError(.badField, layer: "ethernet", "more than \(Self.maximumVLANTags) VLAN tags")
      }
      let tci = try r.u16("VLAN tag")
      tags.append(
        VLANTag(
          tpid: type, priority: UInt8(truncatingIfNeeded: tci >> 13), dropEligible: tci & 0x1000 != 0,
          vid: tci & 0x0FFF))
      type = EtherType(try r.u16("ethertype after VLAN tag"))
    }
    guard type.rawValue >= 0x0600 else {
      throw WireError(.unsupported, layer: "ethernet", "802.3 length field \(type.rawValue), not Ethernet II")
    }
    self.vlanTags = tags
    self.etherType = type
    self.payload = r.rest()
  }

  /// The VLAN IDs of the tags, outermost first.
  public var vlanIDs: [UInt16] { self.vlanTags.map(\.vid) }

  /// Header length including tags.
  public var headerLength: Int { Self.minimumHeaderLength + 4 * self.vlanTags.count }

  /// Writes the header (addresses, tags, EtherType) only.
  public func writeHeader(to buffer: inout ByteBuffer) {
    buffer.writeMAC(self.destination)
    buffer.writeMAC(self.source)
    for tag in self.vlanTags {
      buffer.writeInteger(tag.tpid.rawValue)
      buffer.writeInteger(tag.tci)
    }
    buffer.writeInteger(self.etherType.rawValue)
  }

  /// Writes the header and the payload.
  public func write(to buffer: inout ByteBuffer) {
    self.writeHeader(to: &buffer)
    buffer.writeImmutableBuffer(self.payload)
  }

  /// The encoded frame.
  public var bytes: ByteBuffer {
    var b = ByteBuffer()
    b.reserveCapacity(self.headerLength + self.payload.readableBytes)
    self.write(to: &b)
    return b
  }
}
