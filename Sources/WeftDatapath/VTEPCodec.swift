import WeftWire

/// Why the userspace VTEP dropped a packet; the raw value names the counter.
public enum VTEPDropReason: String, Sendable, CaseIterable, Codable {
  /// Shorter than a VXLAN header, an Ethernet header and an IPv4 header.
  case truncated
  /// The VXLAN I flag is not set (RFC 7348 §5: the VNI is then not valid).
  case badFlags = "bad-flags"
  /// No network of this host has the VNI.
  case unknownVNI = "unknown-vni"
  /// The sender is not a member host of the VNI's network.
  case unknownPeer = "unknown-peer"
  /// The inner frame is not addressed to this host's VTEP MAC.
  case wrongInnerMAC = "wrong-inner-mac"
  /// The inner frame is not IPv4 (the overlay carries IPv4 only; a local IPv6 packet routed
  /// into the TUN is dropped for this reason too).
  case notIPv4 = "not-ipv4"
  /// The inner IPv4 header is malformed or longer than what arrived.
  case badInnerPacket = "bad-inner-packet"
  /// The inner source address is not in the sending host's subnet (a forged source).
  case forgedSource = "forged-source"
  /// The inner destination is not in this host's subnet.
  case wrongDestination = "wrong-destination"
  /// A packet from a local workload for an address no member host holds.
  case noRoute = "no-route"
  /// The kernel refused the packet (TUN write or UDP send failed).
  case ioError = "io-error"
}

/// The VXLAN wire work of the userspace VTEP, on raw buffers and without allocation: the inner
/// IPv4 packet always sits at ``innerOffset`` of its buffer, behind the 8-byte VXLAN header and
/// the 14-byte inner Ethernet header, so encapsulation writes 22 bytes in front of a packet read
/// from the TUN and decapsulation hands the TUN a slice of the received datagram: no copies.
public enum VTEPCodec {
  /// Where the inner IPv4 packet starts in a VXLAN UDP payload.
  public static let innerOffset = VXLANPacket.headerLength + 14
  /// The smallest valid payload: headers plus a minimal IPv4 header.
  public static let minimumLength = innerOffset + 20

  /// The result of encapsulating one packet.
  public enum Encapsulated: Sendable {
    /// Send `length` bytes of the buffer to `peer`; `flow` picks the outer source port.
    case send(peer: VTEPPeer, length: Int, flow: UInt32)
    /// Drop it, for this reason.
    case drop(VTEPDropReason)
  }

  /// The result of decapsulating one datagram.
  public enum Decapsulated: Sendable {
    /// Deliver `length` bytes from ``innerOffset`` into the TUN of network `vni`, from `peer`.
    case deliver(vni: UInt32, peer: VTEPPeer, length: Int)
    /// Drop it, for this reason; `vni` when the header named a known network.
    case drop(VTEPDropReason, vni: UInt32?)
  }

  /// Frames the IPv4 packet of `length` bytes at `buffer[innerOffset...]` for the peer holding
  /// its destination: writes the VXLAN and inner Ethernet headers in front of it.
  public static func encapsulate(
    _ buffer: UnsafeMutableRawBufferPointer, length: Int, network: VTEPNetwork
  ) -> Encapsulated {
    guard length >= 20, buffer.count >= innerOffset + length else { return .drop(.badInnerPacket) }
    let ip = UnsafeRawBufferPointer(rebasing: buffer[innerOffset..<(innerOffset + length)])
    guard ip[0] >> 4 == 4 else { return .drop(ip[0] >> 4 == 6 ? .notIPv4 : .badInnerPacket) }
    let destination = load32(ip, 16)
    guard let peer = network.peer(forInner: destination) else { return .drop(.noRoute) }
    writeFrameHeader(buffer, peer: peer, network: network)
    return .send(peer: peer, length: innerOffset + length, flow: flowHash(ip))
  }

  /// Writes the 22 bytes that go in front of an inner IPv4 packet sent to `peer`: the VXLAN header
  /// (I flag, the network's VNI) and the inner Ethernet header, to the peer's VTEP MAC from ours,
  /// type IPv4: what a kernel VXLAN device expects.
  @inline(__always)
  public static func writeFrameHeader(
    _ buffer: UnsafeMutableRawBufferPointer, peer: VTEPPeer, network: VTEPNetwork
  ) {
    buffer[0] = VXLANPacket.flagI
    buffer[1] = 0
    buffer[2] = 0
    buffer[3] = 0
    buffer[4] = UInt8(truncatingIfNeeded: network.vni >> 16)
    buffer[5] = UInt8(truncatingIfNeeded: network.vni >> 8)
    buffer[6] = UInt8(truncatingIfNeeded: network.vni)
    buffer[7] = 0
    writeMAC(peer.mac, to: buffer, at: 8)
    writeMAC(network.localMAC, to: buffer, at: 14)
    buffer[20] = 0x08
    buffer[21] = 0x00
  }

  /// Validates one received VXLAN payload from `source` (underlay IPv4, host byte order) and
  /// finds where its inner packet goes. Every check the datapath promises is here: header,
  /// flags, VNI, member sender, inner MAC, inner IPv4 header, source in the sender's subnet,
  /// destination in ours.
  public static func decapsulate(_ datagram: UnsafeRawBufferPointer, source: UInt32, table: VTEPTable)
    -> Decapsulated
  {
    var cache = LookupCache()
    return Self.decapsulate(datagram, source: source, table: table, cache: &cache)
  }

  /// The network and sender the last datagram came from and what its checks need of them, kept
  /// by a receive loop across one batch: a GRO train holds dozens of datagrams from one peer,
  /// which then pay for the table's lookups once. Start a new one whenever the table may have
  /// changed.
  public struct LookupCache: Sendable {
    fileprivate var vni = UInt32.max  // no 24-bit VNI matches
    fileprivate var source: UInt32 = 0
    fileprivate var peer: VTEPPeer?
    fileprivate var localMAC = MACAddress(0, 0, 0, 0, 0, 0)
    fileprivate var subnetBase: UInt32 = 0
    fileprivate var subnetMask: UInt32 = 0

    /// An empty cache.
    public init() {}
  }

  /// ``decapsulate(_:source:table:)``, looking `table` up only when the datagram's VNI or sender
  /// differs from the last one `cache` saw.
  @inline(__always)
  public static func decapsulate(
    _ datagram: UnsafeRawBufferPointer, source: UInt32, table: VTEPTable, cache: inout LookupCache
  ) -> Decapsulated {
    guard datagram.count >= minimumLength else { return .drop(.truncated, vni: nil) }
    guard datagram[0] & VXLANPacket.flagI != 0 else { return .drop(.badFlags, vni: nil) }
    let vni = UInt32(datagram[4]) << 16 | UInt32(datagram[5]) << 8 | UInt32(datagram[6])
    if cache.vni != vni || cache.source != source || cache.peer == nil {
      guard let network = table.networks[vni] else { return .drop(.unknownVNI, vni: nil) }
      guard let peer = network.peersByUnderlay[source] else { return .drop(.unknownPeer, vni: vni) }
      cache.vni = vni
      cache.source = source
      cache.peer = peer
      cache.localMAC = network.localMAC
      cache.subnetBase = network.subnetBase
      cache.subnetMask = network.subnetMask
    }
    let peer = cache.peer!
    guard macEquals(datagram, at: 8, cache.localMAC) else { return .drop(.wrongInnerMAC, vni: vni) }
    guard datagram[20] == 0x08, datagram[21] == 0x00 else { return .drop(.notIPv4, vni: vni) }
    let ip = UnsafeRawBufferPointer(rebasing: datagram[innerOffset...])
    let headerLength = Int(ip[0] & 0x0f) * 4
    let totalLength = Int(ip[2]) << 8 | Int(ip[3])
    guard ip[0] >> 4 == 4, headerLength >= 20, totalLength >= headerLength, totalLength <= ip.count else {
      return .drop(.badInnerPacket, vni: vni)
    }
    guard load32(ip, 12) & peer.subnetMask == peer.subnetBase else { return .drop(.forgedSource, vni: vni) }
    guard load32(ip, 16) & cache.subnetMask == cache.subnetBase else {
      return .drop(.wrongDestination, vni: vni)
    }
    return .deliver(vni: vni, peer: peer, length: totalLength)
  }

  /// The `virtio_net_hdr` in front of every packet on the TUN (IFF_VNET_HDR).
  public static let virtioHeaderLength = 10

  /// Writes the `virtio_net_hdr` for the inner IPv4 packet of `length` bytes at
  /// `buffer[innerOffset...]` into the ten bytes before it. A packet within the MTU gets an empty
  /// header. A larger one is a kernel peer's GSO packet that reached us unsegmented (over veth
  /// the kernel passes VXLAN GSO packets along whole, and a UDP socket receives them as one
  /// datagram): the header asks the kernel to segment it at `segmentSize` (the GRO size it
  /// reported, else derived from the MTU) and to finish its partial checksum. False when such a
  /// packet is neither TCP nor UDP (it cannot be segmented).
  public static func writeVirtioHeader(
    _ buffer: UnsafeMutableRawBufferPointer, length: Int, mtu: Int, segmentSize: Int
  ) -> Bool {
    let h = innerOffset - virtioHeaderLength
    for i in h..<innerOffset { buffer[i] = 0 }
    let ip = UnsafeRawBufferPointer(rebasing: buffer[innerOffset..<(innerOffset + length)])
    let ipHeader = Int(ip[0] & 0x0f) * 4
    func put16(_ value: Int, _ at: Int) {  // virtio fields are little-endian
      buffer[h + at] = UInt8(value & 0xff)
      buffer[h + at + 1] = UInt8(value >> 8 & 0xff)
    }
    guard length > mtu else {
      if let offset = partialChecksumOffset(ip, headerLength: ipHeader) {
        buffer[h] = 1  // VIRTIO_NET_HDR_F_NEEDS_CSUM: the kernel completes it
        put16(ipHeader, 6)
        put16(offset, 8)
      }
      return true
    }
    let gsoType: UInt8
    let checksumOffset: Int
    let l4Header: Int
    switch ip[9] {
    case 6 where length >= ipHeader + 20:
      gsoType = 1  // VIRTIO_NET_HDR_GSO_TCPV4
      checksumOffset = 16
      l4Header = Int(ip[ipHeader + 12] >> 4) * 4
    case 17 where length >= ipHeader + 8:
      gsoType = 5  // VIRTIO_NET_HDR_GSO_UDP_L4
      checksumOffset = 6
      l4Header = 8
    default:
      return false
    }
    let headers = ipHeader + l4Header
    let segment = segmentSize > 0 && segmentSize < length - headers ? segmentSize : mtu - headers
    guard segment > 0 else { return false }
    buffer[h] = 1  // VIRTIO_NET_HDR_F_NEEDS_CSUM
    buffer[h + 1] = gsoType
    put16(headers, 2)
    put16(segment, 4)
    put16(ipHeader, 6)
    put16(checksumOffset, 8)
    return true
  }

  /// Where the checksum field sits (from the L4 header) when an unfragmented TCP or UDP packet
  /// carries only its pseudo-header sum, as a kernel peer leaves it for checksum offload: over
  /// veth nothing completes it, and the packet would be dropped as corrupt behind the TUN. Such a
  /// packet is handed on with NEEDS_CSUM. A field that merely equals the pseudo-header sum but
  /// already checks out as a full checksum is left alone.
  static func partialChecksumOffset(_ ip: UnsafeRawBufferPointer, headerLength: Int) -> Int? {
    let fragment = (UInt16(ip[6]) << 8 | UInt16(ip[7])) & 0x3fff
    guard fragment == 0 else { return nil }
    let offset: Int
    switch ip[9] {
    case 6: offset = 16
    case 17: offset = 6
    default: return nil
    }
    let l4Length = ip.count - headerLength
    guard l4Length >= offset + 2 else { return nil }
    let field = UInt16(ip[headerLength + offset]) << 8 | UInt16(ip[headerLength + offset + 1])
    var pseudo = Checksum()
    pseudo.add(bytes: UnsafeRawBufferPointer(rebasing: ip[12..<20]))
    pseudo.add(UInt16(ip[9]))
    pseudo.add(UInt16(l4Length))
    guard field == pseudo.folded, field != 0 else { return nil }
    var full = pseudo
    full.add(bytes: UnsafeRawBufferPointer(rebasing: ip[headerLength...]))
    return full.value == 0 ? nil : offset
  }

  /// The length of the VXLAN datagram at the start of `bytes` when the kernel handed several
  /// (GRO, `segmentSize` each) or one oversized one (a peer's unsegmented GSO packet) in one
  /// buffer: the GRO segment, unless the inner IPv4 packet says it is longer.
  public static func datagramLength(_ bytes: UnsafeRawBufferPointer, segmentSize: Int) -> Int {
    guard segmentSize > 0, segmentSize < bytes.count else { return bytes.count }
    guard bytes.count >= minimumLength else { return bytes.count }
    let inner = Int(bytes[innerOffset + 2]) << 8 | Int(bytes[innerOffset + 3])
    return innerOffset + inner > segmentSize ? min(bytes.count, innerOffset + inner) : segmentSize
  }

  /// A hash of the inner flow (addresses, protocol, and ports for unfragmented TCP and UDP), so
  /// that one flow keeps one outer source port and different flows spread over several.
  @inline(__always)
  public static func flowHash(_ ip: UnsafeRawBufferPointer) -> UInt32 {
    var h = UInt64(load32(ip, 12)) << 32 | UInt64(load32(ip, 16))
    let proto = ip[9]
    h ^= UInt64(proto) << 56
    let headerLength = Int(ip[0] & 0x0f) * 4
    let fragmented = (UInt16(ip[6]) << 8 | UInt16(ip[7])) & 0x3fff != 0
    if (proto == 6 || proto == 17), !fragmented, ip.count >= headerLength + 4 {
      h ^= UInt64(load32(ip, headerLength)) &* 0x9E37_79B9_7F4A_7C15
    }
    h = (h ^ (h >> 33)) &* 0xFF51_AFD7_ED55_8CCD
    h = (h ^ (h >> 33)) &* 0xC4CE_B9FE_1A85_EC53
    return UInt32(truncatingIfNeeded: h ^ (h >> 33))
  }

  @inline(__always)
  static func load32(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(p[offset]) << 24 | UInt32(p[offset + 1]) << 16 | UInt32(p[offset + 2]) << 8 | UInt32(p[offset + 3])
  }

  @inline(__always)
  static func writeMAC(_ mac: MACAddress, to buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
    let b = mac.bytes
    buffer[offset] = b.0
    buffer[offset + 1] = b.1
    buffer[offset + 2] = b.2
    buffer[offset + 3] = b.3
    buffer[offset + 4] = b.4
    buffer[offset + 5] = b.5
  }

  @inline(__always)
  static func macEquals(_ p: UnsafeRawBufferPointer, at offset: Int, _ mac: MACAddress) -> Bool {
    let b = mac.bytes
    return p[offset] == b.0 && p[offset + 1] == b.1 && p[offset + 2] == b.2 && p[offset + 3] == b.3
      && p[offset + 4] == b.4 && p[offset + 5] == b.5
  }
}
