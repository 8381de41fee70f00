import WeftWire

/// A remote host as the userspace VTEP sees it: where its subnet is and how to reach it.
public struct VTEPPeer: Sendable, Hashable {
  /// The host's name.
  public let host: String
  /// The host's underlay IPv4 address (host byte order).
  public let underlay: UInt32
  /// The first address of the host's subnet lease (host byte order).
  public let subnetBase: UInt32
  /// The subnet's mask (host byte order).
  public let subnetMask: UInt32
  /// The host's VTEP MAC, the inner Ethernet destination of frames to it.
  public let mac: MACAddress

  /// Creates a peer.
  public init(host: String, underlay: UInt32, subnetBase: UInt32, subnetMask: UInt32, mac: MACAddress) {
    self.host = host
    self.underlay = underlay
    self.subnetBase = subnetBase
    self.subnetMask = subnetMask
    self.mac = mac
  }
}

/// One network of the userspace VTEP: the local end and every member peer, indexed both ways.
public struct VTEPNetwork: Sendable {
  /// The network's name.
  public let name: String
  /// Its VNI.
  public let vni: UInt32
  /// This host's VTEP MAC (the inner Ethernet source of frames sent, the destination accepted).
  public let localMAC: MACAddress
  /// The overlay MTU (the largest inner packet on the wire).
  public let mtu: Int
  /// This host's subnet: first address and mask (host byte order).
  public let subnetBase: UInt32
  /// The mask of every subnet lease of this network (all leases have one length).
  public let subnetMask: UInt32
  /// Peers by the first address of their subnet.
  public let peersBySubnet: [UInt32: VTEPPeer]
  /// Peers by underlay address.
  public let peersByUnderlay: [UInt32: VTEPPeer]

  /// Builds the network's view from the agent's desired state (IPv4 leases and underlays only).
  public init(_ desired: DesiredNetwork) {
    self.name = desired.name
    self.vni = desired.vni
    self.localMAC = desired.vtepMAC
    self.mtu = Int(desired.mtu)
    let mask = Self.mask(desired.subnet.length)
    self.subnetMask = mask
    self.subnetBase = Self.v4(desired.subnet.network.address) & mask
    var bySubnet: [UInt32: VTEPPeer] = [:]
    var byUnderlay: [UInt32: VTEPPeer] = [:]
    for p in desired.peers {
      guard p.subnet.address.isV4, p.underlay.isV4 else { continue }
      let peerMask = Self.mask(p.subnet.length)
      let peer = VTEPPeer(
        host: p.host, underlay: Self.v4(p.underlay), subnetBase: Self.v4(p.subnet.address) & peerMask,
        subnetMask: peerMask, mac: p.vtepMAC)
      bySubnet[peer.subnetBase] = peer
      byUnderlay[peer.underlay] = peer
    }
    self.peersBySubnet = bySubnet
    self.peersByUnderlay = byUnderlay
  }

  /// The peer whose subnet holds `address`, if any.
  @inline(__always)
  public func peer(forInner address: UInt32) -> VTEPPeer? {
    self.peersBySubnet[address & self.subnetMask]
  }

  static func mask(_ length: UInt8) -> UInt32 {
    length == 0 ? 0 : UInt32.max << (32 - UInt32(min(length, 32)))
  }

  static func v4(_ address: IPAddress) -> UInt32 {
    if case .v4(let a) = address { return a.value }
    return 0
  }
}

/// Every network of the userspace VTEP, by VNI: an immutable snapshot the packet loops read and
/// the reconcile loop replaces as a whole.
public struct VTEPTable: Sendable {
  /// Networks by VNI.
  public let networks: [UInt32: VTEPNetwork]

  /// Builds the table from desired networks.
  public init(_ networks: [DesiredNetwork]) {
    self.networks = Dictionary(networks.map { ($0.vni, VTEPNetwork($0)) }, uniquingKeysWith: { a, _ in a })
  }
}
