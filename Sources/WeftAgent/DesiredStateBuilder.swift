import WeftDatapath
import WeftModel
import WeftWire

/// Turns the controller's resources into this host's desired datapath state. Pure: the same
/// resources always give the same state.
public enum DesiredStateBuilder {
  /// The VXLAN overhead on an IPv4 underlay (outer Ethernet is not counted in the MTU):
  /// IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
  public static let overheadIPv4: UInt32 = 50
  /// The same on an IPv6 underlay (IPv6 header 40).
  public static let overheadIPv6: UInt32 = 70

  /// The desired state of host `host`: every network where it holds a lease, with every other
  /// host that holds one as a peer. Networks or hosts with unreadable fields are skipped.
  public static func build(
    host: String, underlay: IPAddress, underlayDevice: String, underlayMTU: UInt32,
    networks: [Resource], hosts: [Resource]
  ) -> DesiredState {
    let hostInfo: [String: (HostSpec, HostStatus)] = Dictionary(
      uniqueKeysWithValues: hosts.compactMap { r in
        guard let spec = try? r.decodeSpec(HostSpec.self),
          let status = (try? r.decodeStatus(HostStatus.self)) ?? nil
        else { return nil }
        return (r.metadata.name, (spec, status))
      })
    var out: [DesiredNetwork] = []
    for network in networks.sorted(by: { $0.metadata.name < $1.metadata.name }) {
      guard let spec = try? network.decodeSpec(NetworkSpec.self),
        let status = (try? network.decodeStatus(NetworkStatus.self)) ?? nil, status.vni > 0,
        let mine = status.leases[host].flatMap({ IPPrefix($0) })
      else { continue }
      let mtu: UInt32
      switch spec.mtu ?? .auto {
      case .fixed(let m): mtu = UInt32(m)
      case .auto: mtu = underlayMTU - (underlay.isV4 ? Self.overheadIPv4 : Self.overheadIPv6)
      }
      let peers = status.leases.sorted { $0.key < $1.key }.compactMap { name, lease -> Peer? in
        guard name != host, let subnet = IPPrefix(lease), let (spec, _) = hostInfo[name],
          let address = IPAddress(spec.underlay)
        else { return nil }
        return Peer(host: name, subnet: subnet, vtepMAC: Self.vtepMAC(subnet), underlay: address)
      }
      out.append(
        DesiredNetwork(
          name: network.metadata.name, vni: UInt32(status.vni), subnet: mine, vtepMAC: Self.vtepMAC(mine),
          mtu: mtu,
          peers: peers))
    }
    return DesiredState(underlay: underlay, underlayDevice: underlayDevice, networks: out)
  }

  /// The VTEP MAC for a subnet lease: `02:57:` then the subnet's four octets (the controller's
  /// rule; unique per network while leases are).
  public static func vtepMAC(_ subnet: IPPrefix) -> MACAddress {
    let o = subnet.network.address.octets
    return MACAddress(0x02, 0x57, o[0], o[1], o[2], o[3])
  }
}
