import Foundation
import WeftDatapath
import WeftLinux
import WeftWire

/// A workload attached to a network: what the attach made.
public struct WorkloadAttachment: Sendable, Hashable, Codable {
  /// The workload's name.
  public var name: String
  /// The network's name.
  public var network: String
  /// The workload's address with the subnet's prefix length.
  public var address: String
  /// The gateway (the bridge's address).
  public var gateway: String
  /// The workload interface's MAC.
  public var mac: String
  /// The MTU set on both ends.
  public var mtu: UInt32
  /// The host end of the veth pair.
  public var hostInterface: String
  /// The interface name inside the workload.
  public var interface: String
}

/// Attaching and detaching workloads (network namespaces) to a host's network: the one path the
/// lab and the CNI plugin share.
public enum WorkloadAttach {
  /// The host-side veth name for a workload on a network: `wv` and ten hex digits of a hash of
  /// both names (stable, within the 15-byte limit).
  public static func hostInterfaceName(workload: String, network: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in "\(network)/\(workload)".utf8 {
      hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return "wv" + String(repeating: "0", count: max(0, 16 - hex.count)) + hex.prefix(10)
  }

  /// Attaches `workload` (its namespace) to `network` on this host: a veth pair with `interface`
  /// inside the workload, the host end in the network's bridge, an address from `ipam`, the MTU,
  /// and a default route via the gateway. A failure removes everything it made.
  public static func attach(
    workload: String, namespace: NetworkNamespace, interface: String = "eth0", network: DesiredNetwork,
    host: Netlink, ipam: IPAM
  ) throws -> WorkloadAttachment {
    let hostSide = Self.hostInterfaceName(workload: workload, network: network.name)
    let address = try ipam.allocate(workload: workload, network: network.name, subnet: network.subnet)
    do {
      guard try host.link(named: network.bridgeName) != nil else {
        throw IPAMError(
          "network \(network.name) has no bridge \(network.bridgeName) on this host yet (is the agent running?)"
        )
      }
      try host.createLink(
        name: hostSide, kind: .veth(peer: interface, peerNamespace: namespace), mtu: network.mtu)
      try host.setMaster(hostSide, master: network.bridgeName)
      try host.setUp(hostSide)
      let inside = try namespace.openNetlink()
      try inside.setUp("lo")
      let prefix = IPPrefix(.v4(address), network.subnet.length)!
      try inside.addAddress(prefix, to: interface)
      try inside.setUp(interface)
      let index = try inside.index(of: interface, for: "add default route")
      try inside.replaceRoute(
        Route(destination: IPPrefix("0.0.0.0/0")!, gateway: network.gateway.address, outputIndex: index))
      let mac = try inside.link(named: interface)?.address?.description ?? ""
      return WorkloadAttachment(
        name: workload, network: network.name, address: prefix.description,
        gateway: network.gateway.address.description, mac: mac, mtu: network.mtu, hostInterface: hostSide,
        interface: interface)
    } catch {
      try? host.deleteLink(name: hostSide)
      try? ipam.release(workload: workload, network: network.name)
      throw error
    }
  }

  /// Detaches a workload: removes the veth pair (both ends) and releases the address. Detaching
  /// a workload that is already gone succeeds.
  public static func detach(workload: String, network: String, host: Netlink, ipam: IPAM) throws {
    let hostSide = Self.hostInterfaceName(workload: workload, network: network)
    if try host.link(named: hostSide) != nil { try host.deleteLink(name: hostSide) }
    try ipam.release(workload: workload, network: network)
  }
}
