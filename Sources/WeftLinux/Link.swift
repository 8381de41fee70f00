import WeftWire

/// Options of a VXLAN link (the kernel's `ip link add ... type vxlan`).
public struct VXLANOptions: Sendable, Equatable {
  /// The 24-bit VXLAN network identifier.
  public var vni: UInt32
  /// The UDP destination port (4789 by default, the IANA port).
  public var port: UInt16
  /// The local (source) underlay address, if pinned.
  public var local: IPAddress?
  /// The underlay device index packets leave through, if pinned.
  public var underlayIndex: Int32?
  /// Whether the device learns remote MACs from received packets (Weft keeps it off).
  public var learning: Bool
  /// Whether IPv4 outer UDP checksums are computed on transmit.
  public var udpChecksum: Bool
  /// Whether IPv6 outer UDP checksums are zero on transmit (RFC 6935).
  public var zeroChecksum6Tx: Bool
  /// Whether zero IPv6 outer UDP checksums are accepted on receive.
  public var zeroChecksum6Rx: Bool
  /// The outer UDP source port range (inclusive low, exclusive high, as the kernel takes it).
  public var sourcePortRange: (low: UInt16, high: UInt16)?

  /// Creates VXLAN options with Weft's defaults: port 4789, learning off, IPv4 checksums off,
  /// source ports 49152-65535 as RFC 7348 recommends.
  public init(
    vni: UInt32, port: UInt16 = 4789, local: IPAddress? = nil, underlayIndex: Int32? = nil,
    learning: Bool = false, udpChecksum: Bool = false, zeroChecksum6Tx: Bool = false,
    zeroChecksum6Rx: Bool = false, sourcePortRange: (low: UInt16, high: UInt16)? = (49152, 65535)
  ) {
    self.vni = vni
    self.port = port
    self.local = local
    self.underlayIndex = underlayIndex
    self.learning = learning
    self.udpChecksum = udpChecksum
    self.zeroChecksum6Tx = zeroChecksum6Tx
    self.zeroChecksum6Rx = zeroChecksum6Rx
    self.sourcePortRange = sourcePortRange
  }

  /// Equal when every option is equal (the port range compared by its bounds).
  public static func == (l: VXLANOptions, r: VXLANOptions) -> Bool {
    l.vni == r.vni && l.port == r.port && l.local == r.local && l.underlayIndex == r.underlayIndex
      && l.learning == r.learning && l.udpChecksum == r.udpChecksum
      && l.zeroChecksum6Tx == r.zeroChecksum6Tx && l.zeroChecksum6Rx == r.zeroChecksum6Rx
      && l.sourcePortRange?.low == r.sourcePortRange?.low
      && l.sourcePortRange?.high == r.sourcePortRange?.high
  }
}

/// The kind of link to create, with its kind-specific options.
public enum LinkKind: Sendable, Equatable {
  /// A veth pair; the peer is named `peer` and created directly in `peerNamespace` when given.
  case veth(peer: String, peerNamespace: NetworkNamespace? = nil)
  /// A Linux bridge.
  case bridge
  /// A VXLAN tunnel endpoint.
  case vxlan(VXLANOptions)
  /// A VRF bound to a routing table.
  case vrf(table: UInt32)
  /// A dummy device.
  case dummy
  /// A kind Weft reads but does not create (e.g. `tun`, `loopback`).
  case other(String)

  /// The kernel's IFLA_INFO_KIND name.
  public var kernelName: String {
    switch self {
    case .veth: "veth"
    case .bridge: "bridge"
    case .vxlan: "vxlan"
    case .vrf: "vrf"
    case .dummy: "dummy"
    case .other(let n): n
    }
  }
}

/// A network link as the kernel reports it.
public struct Link: Sendable, Equatable {
  /// Interface index.
  public var index: Int32
  /// Interface name.
  public var name: String
  /// The kind, with options where Weft decodes them (VXLAN); `nil` for devices without one.
  public var kind: LinkKind?
  /// MTU in bytes.
  public var mtu: UInt32
  /// Hardware address, when the device has an Ethernet one.
  public var address: MACAddress?
  /// Index of the master device (bridge or VRF), if enslaved.
  public var masterIndex: Int32?
  /// Administratively up (IFF_UP).
  public var isUp: Bool
  /// Kernel operational state (IF_OPER_*), e.g. 6 for up.
  public var operState: UInt8
}
