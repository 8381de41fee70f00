import NIOCore

/// The outer headers of one VXLAN tunnel (local VTEP to a remote VTEP) and the encapsulation
/// of inner Ethernet frames into complete outer frames:
/// Ethernet + IPv4/IPv6 + UDP + VXLAN + inner frame.
public struct VXLANEncapsulation: Hashable, Sendable {
  /// Outer source MAC (the local underlay interface).
  public var sourceMAC: MACAddress
  /// Outer destination MAC (the next hop towards the remote VTEP).
  public var destinationMAC: MACAddress
  /// Outer VLAN tags, outermost first.
  public var vlanTags: [VLANTag]
  /// Local VTEP address.
  public let source: IPAddress
  /// Remote VTEP address (same family as `source`).
  public let destination: IPAddress
  /// Outer UDP destination port.
  public var destinationPort: UInt16
  /// Outer TTL / hop limit.
  public var ttl: UInt8
  /// Whether to compute the outer UDP checksum. Zero is allowed for IPv4; for IPv6 it is
  /// computed unless this is turned off (RFC 6935 zero-checksum tunnels).
  public var udpChecksum: Bool
  /// The outer IPv4 DF flag.
  public var dontFragment: Bool
  /// Perturbs the flow hash that picks source ports.
  public var flowSeed: UInt64

  /// Creates a tunnel description; throws `.badField` when the addresses' families differ.
  public init(
    sourceMAC: MACAddress, destinationMAC: MACAddress, source: IPAddress, destination: IPAddress,
    destinationPort: UInt16 = VXLANPacket.defaultPort, ttl: UInt8 = 64, udpChecksum: Bool? = nil,
    dontFragment: Bool = false, vlanTags: [VLANTag] = [], flowSeed: UInt64 = 0
  ) throws(WireError) {
    guard source.isV4 == destination.isV4 else {
      throw WireError(
        .badField, layer: "vxlan", "outer addresses \(source) and \(destination) differ in family")
    }
    self.sourceMAC = sourceMAC
    self.destinationMAC = destinationMAC
    self.vlanTags = vlanTags
    self.source = source
    self.destination = destination
    self.destinationPort = destinationPort
    self.ttl = ttl
    self.udpChecksum = udpChecksum ?? !source.isV4
    self.dontFragment = dontFragment
    self.flowSeed = flowSeed
  }

  /// Bytes added in front of an inner frame: Ethernet (+tags), IP, UDP and VXLAN headers.
  public var overhead: Int {
    EthernetFrame.minimumHeaderLength + 4 * self.vlanTags.count + (self.source.isV4 ? 20 : 40)
      + UDPDatagram.headerLength + VXLANPacket.headerLength
  }

  /// The complete outer frame carrying `innerFrame` in `vni`. The UDP source port is the flow
  /// hash of the inner frame unless `sourcePort` is given.
  ///
  /// - Precondition: the outer IP packet fits 65535 bytes.
  public func encapsulate(
    _ innerFrame: ByteBuffer, vni: VNI, sourcePort: UInt16? = nil, identification: UInt16 = 0
  ) -> ByteBuffer {
    var b = ByteBuffer()
    b.reserveCapacity(self.overhead + innerFrame.readableBytes)
    self.encapsulate(innerFrame, vni: vni, sourcePort: sourcePort, identification: identification, into: &b)
    return b
  }

  /// Appends the complete outer frame carrying `innerFrame` to `buffer`.
  public func encapsulate(
    _ innerFrame: ByteBuffer, vni: VNI, sourcePort: UInt16? = nil, identification: UInt16 = 0,
    into b: inout ByteBuffer
  ) {
    let udpLength = UDPDatagram.headerLength + VXLANPacket.headerLength + innerFrame.readableBytes
    precondition(udpLength <= 0xFFFF - 40, "VXLAN payload too large")
    let port = sourcePort ?? FlowHash.sourcePort(innerFrame: innerFrame, seed: self.flowSeed)
    let ethernet = EthernetFrame(
      destination: self.destinationMAC, source: self.sourceMAC, vlanTags: self.vlanTags,
      etherType: self.source.isV4 ? .ipv4 : .ipv6, payload: ByteBuffer())
    ethernet.writeHeader(to: &b)
    switch (self.source, self.destination) {
    case (.v4(let s), .v4(let d)):
      IPv4Packet(
        source: s, destination: d, protocol: .udp, payload: ByteBuffer(), ttl: self.ttl,
        identification: identification, dontFragment: self.dontFragment
      ).writeHeader(to: &b, payloadLength: udpLength)
    case (.v6(let s), .v6(let d)):
      IPv6Packet(
        source: s, destination: d, upperLayerProtocol: .udp, payload: ByteBuffer(), hopLimit: self.ttl
      )
      .writeHeader(to: &b, payloadLength: udpLength)
    default:
      preconditionFailure("families checked in init")
    }
    let udpStart = b.writerIndex
    b.writeInteger(port)
    b.writeInteger(self.destinationPort)
    b.writeInteger(UInt16(udpLength))
    b.writeInteger(UInt16(0))
    VXLANPacket(vni: vni, payload: innerFrame).write(to: &b)
    if self.udpChecksum {
      var c = Checksum()
      c.addPseudoHeader(source: self.source, destination: self.destination, protocol: .udp, length: udpLength)
      c.add(b.getSlice(at: udpStart, length: udpLength) ?? ByteBuffer())
      let v = c.value
      b.setInteger(v == 0 ? 0xFFFF : v, at: udpStart + 6)
    }
  }

  /// Decapsulates an outer UDP payload to its VNI and inner Ethernet frame (a slice).
  public static func decapsulate(udpPayload: ByteBuffer) throws(WireError) -> (
    vni: VNI, innerFrame: ByteBuffer
  ) {
    let p = try VXLANPacket(decoding: udpPayload)
    return (p.vni, p.payload)
  }
}

/// A complete outer VXLAN frame decoded through every layer.
public struct VXLANFrame: Hashable, Sendable {
  /// The outer Ethernet frame.
  public var ethernet: EthernetFrame
  /// The outer IP packet.
  public var ip: IPPacket
  /// The outer UDP datagram.
  public var udp: UDPDatagram
  /// The VXLAN header and inner frame.
  public var vxlan: VXLANPacket

  /// Decodes an outer frame. Throws `.unsupported` when it is not IPv4/IPv6 UDP to `port`, or
  /// is an IP fragment; with `verifyChecksums`, `.badChecksum` for a bad IPv4 header or UDP
  /// checksum (a zero UDP checksum passes for IPv4, and for IPv6 only with `allowZeroChecksumIPv6`).
  public init(
    decoding buffer: ByteBuffer, port: UInt16 = VXLANPacket.defaultPort, verifyChecksums: Bool = true,
    allowZeroChecksumIPv6: Bool = true
  ) throws(WireError) {
    self.ethernet = try EthernetFrame(decoding: buffer)
    guard self.ethernet.etherType == .ipv4 || self.ethernet.etherType == .ipv6 else {
      throw WireError(.unsupported, layer: "vxlan", "outer ethertype \(self.ethernet.etherType)")
    }
    self.ip = try IPPacket(decoding: self.ethernet.payload, verifyChecksum: verifyChecksums)
    guard (self.ethernet.etherType == .ipv4) == self.ip.source.isV4 else {
      throw WireError(
        .badField, layer: "vxlan", "ethertype \(self.ethernet.etherType) carries another IP version")
    }
    guard !self.ip.isFragment else { throw WireError(.unsupported, layer: "vxlan", "outer IP fragment") }
    guard self.ip.upperLayerProtocol == .udp else {
      throw WireError(.unsupported, layer: "vxlan", "outer protocol \(self.ip.upperLayerProtocol)")
    }
    self.udp = try UDPDatagram(decoding: self.ip.payload)
    guard self.udp.destinationPort == port else {
      throw WireError(.unsupported, layer: "vxlan", "UDP port \(self.udp.destinationPort), expected \(port)")
    }
    if verifyChecksums {
      let zeroOK = self.udp.checksum == 0 && allowZeroChecksumIPv6
      guard zeroOK || self.udp.isChecksumValid(source: self.ip.source, destination: self.ip.finalDestination)
      else {
        throw WireError(.badChecksum, layer: "udp", "checksum \(hex16(self.udp.checksum)) does not verify")
      }
    }
    self.vxlan = try VXLANPacket(decoding: self.udp.payload)
  }

  /// The network identifier.
  public var vni: VNI { self.vxlan.vni }

  /// The inner Ethernet frame (a slice of the input).
  public var innerFrame: ByteBuffer { self.vxlan.payload }
}
