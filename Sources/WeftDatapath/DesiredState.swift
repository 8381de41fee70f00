import WeftWire

/// A remote host's end of one network: where its subnet lives and how to reach its VTEP.
public struct Peer: Sendable, Hashable {
  /// The remote host's name.
  public var host: String
  /// The remote host's subnet lease.
  public var subnet: IPPrefix
  /// The remote VTEP's MAC on this network.
  public var vtepMAC: MACAddress
  /// The remote host's underlay address.
  public var underlay: IPAddress

  /// Creates a peer.
  public init(host: String, subnet: IPPrefix, vtepMAC: MACAddress, underlay: IPAddress) {
    self.host = host
    self.subnet = subnet
    self.vtepMAC = vtepMAC
    self.underlay = underlay
  }

  /// The address the route to this peer's subnet goes via: the subnet's first (network)
  /// address, which names the peer's VTEP in the neighbour table.
  public var gateway: IPAddress { self.subnet.network.address }
}

/// One network as this host should have it.
public struct DesiredNetwork: Sendable, Hashable {
  /// The network's name.
  public var name: String
  /// Its VNI.
  public var vni: UInt32
  /// This host's subnet lease.
  public var subnet: IPPrefix
  /// This host's VTEP MAC.
  public var vtepMAC: MACAddress
  /// The MTU of the bridge, the VXLAN device and every workload interface.
  public var mtu: UInt32
  /// The other hosts with a lease on this network.
  public var peers: [Peer]

  /// Creates a network.
  public init(name: String, vni: UInt32, subnet: IPPrefix, vtepMAC: MACAddress, mtu: UInt32, peers: [Peer]) {
    self.name = name
    self.vni = vni
    self.subnet = subnet
    self.vtepMAC = vtepMAC
    self.mtu = mtu
    self.peers = peers
  }

  /// The bridge's name, `wbr<VNI>`.
  public var bridgeName: String { "wbr\(self.vni)" }
  /// The VXLAN device's name, `wvx<VNI>`.
  public var vxlanName: String { "wvx\(self.vni)" }
  /// The gateway address workloads use: the subnet's first host address.
  public var gateway: IPPrefix {
    guard case .v4(let a) = self.subnet.network.address else { return self.subnet }
    return IPPrefix(.v4(IPv4Address(a.value + 1)), self.subnet.length)!
  }
}

/// Everything this host's datapath should hold.
public struct DesiredState: Sendable, Hashable {
  /// This host's underlay address (the outer source of VXLAN packets).
  public var underlay: IPAddress
  /// The underlay interface's name.
  public var underlayDevice: String
  /// The networks, each with its peers.
  public var networks: [DesiredNetwork]

  /// Creates a state.
  public init(underlay: IPAddress, underlayDevice: String, networks: [DesiredNetwork]) {
    self.underlay = underlay
    self.underlayDevice = underlayDevice
    self.networks = networks
  }
}

/// What one reconcile changed; an idempotent reconcile of an unchanged state changes nothing.
public struct ReconcileReport: Sendable, Hashable, CustomStringConvertible {
  /// One line per change, e.g. `add route 100.96.2.0/24 via 100.96.2.0 dev wvx1`.
  public var changes: [String] = []

  /// Creates an empty report.
  public init() {}

  /// True when nothing changed.
  public var isEmpty: Bool { self.changes.isEmpty }

  /// The changes, one per line.
  public var description: String {
    self.changes.isEmpty ? "no changes" : self.changes.joined(separator: "\n")
  }
}

/// A datapath: turns a desired state into forwarding state. Reconciling is idempotent: it reads
/// what is there, changes only the difference, and removes what no longer belongs.
public protocol Datapath: Sendable {
  /// Brings the datapath to `desired`; returns what changed.
  func reconcile(_ desired: DesiredState) throws -> ReconcileReport
}
