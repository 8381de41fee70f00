import Foundation
import Synchronization
import WeftLinux
import WeftWire

/// The overlay's second datapath: the VTEP in Swift, over a TUN device per network and UDP
/// sockets on the underlay, speaking the same VXLAN as the kernel's device (so kernel and
/// userspace hosts share a network).
///
/// Per network: the same bridge `wbr<VNI>` with the gateway as the kernel datapath (workloads
/// attach the same way), a persistent TUN `wtun<VNI>` holding the subnet's network address as a
/// /32 with the network's MTU, and per remote host one route (`subnet dev wtun<VNI>`). Packets
/// the kernel routes into the TUN are framed for the peer that holds their destination
/// (``VTEPCodec``) and sent to its underlay address on UDP 4789; received VXLAN is checked and
/// written into the TUN. The TUN is persistent, so restarting the agent keeps its addresses and
/// routes and a new agent picks the same device up. Networks are isolated by the same nftables
/// table as the kernel datapath's, over each network's bridge and TUN.
public final class UserspaceDatapath: Datapath {
  /// Netlink for the namespace being programmed (the agent's own: sockets and TUNs open there).
  public let netlink: Netlink
  /// The VXLAN UDP port.
  public let port: UInt16
  /// Applies the isolation ruleset; nil leaves nftables alone.
  public let firewall: (@Sendable (String) throws -> Void)?
  /// How long a TUN reader keeps polling after a small burst before it sleeps.
  public let spin: Duration
  /// The agent's default for ``spin``, in microseconds.
  public static let defaultSpinMicroseconds = 50

  private struct State: Sendable {
    var engine: UserspaceVTEP?
    var tuns: [UInt32: TunDevice] = [:]
    var lastRules = ""
  }
  private let state = Mutex(State())

  /// Creates a datapath; the sockets open on the first reconcile, on the underlay address.
  public init(
    netlink: Netlink, port: UInt16 = 4789,
    firewall: (@Sendable (String) throws -> Void)? = KernelDatapath.nft,
    spin: Duration = .zero
  ) {
    self.netlink = netlink
    self.port = port
    self.firewall = firewall
    self.spin = spin
  }

  /// The TUN offloads tried in order (the last, none, always works).
  static let offloadChoices: [UInt32] = [
    TunOptions.checksumOffload | TunOptions.tcpSegmentationOffload | TunOptions.udpSegmentationOffload,
    TunOptions.checksumOffload | TunOptions.tcpSegmentationOffload,
    0,
  ]

  /// The TUN device of a network.
  public static func tunName(_ vni: UInt32) -> String { "wtun\(vni)" }

  /// Reconciles every network, removes departed ones, hands the engine its new table.
  public func reconcile(_ desired: DesiredState) throws -> ReconcileReport {
    try self.state.withLock { state in
      var report = ReconcileReport()
      try KernelDatapath.enableForwarding()
      if state.engine == nil {
        state.engine = try UserspaceVTEP(underlay: desired.underlay, port: self.port, spin: self.spin)
        report.changes.append("listen on \(desired.underlay):\(self.port) for VXLAN")
      }
      for n in desired.networks {
        try self.reconcile(n, tuns: &state.tuns, report: &report)
      }
      let wantedVNIs = Set(desired.networks.map(\.vni))
      for vni in state.tuns.keys where !wantedVNIs.contains(vni) { state.tuns[vni] = nil }
      try state.engine?.update(table: VTEPTable(desired.networks), tuns: state.tuns)
      let wanted = Set(desired.networks.flatMap { [$0.bridgeName, Self.tunName($0.vni)] })
      for link in try self.netlink.links()
      where KernelDatapath.isOurs(link.name) && !wanted.contains(link.name) {
        try self.netlink.deleteLink(name: link.name)
        report.changes.append("delete link \(link.name)")
      }
      if let firewall {
        let rules = KernelDatapath.isolationRules(desired.networks) { [$0.bridgeName, Self.tunName($0.vni)] }
        if rules != state.lastRules {
          try firewall(rules)
          state.lastRules = rules
          report.changes.append("apply isolation rules for \(desired.networks.count) network(s)")
        }
      }
      return report
    }
  }

  private func reconcile(_ n: DesiredNetwork, tuns: inout [UInt32: TunDevice], report: inout ReconcileReport)
    throws
  {
    let nl = self.netlink
    let name = Self.tunName(n.vni)
    let existing = try nl.link(named: name)
    if tuns[n.vni] == nil || existing == nil {
      tuns[n.vni] = try Self.openTun(name, netlink: nl)
      report.changes.append("open tun \(name)")
    }
    try nl.ensureLink(name, mtu: n.mtu, report: &report)
    try nl.ensureBridge(n, report: &report)
    try nl.ensureAddresses(on: name, [IPPrefix(n.subnet.network.address, 32)!], report: &report)
    let index = try nl.index(of: name, for: "reconcile")
    let routes = Set(n.peers.map { Route(destination: $0.subnet, gateway: nil, outputIndex: index) })
    try nl.ensureRoutes(routes, through: name, index: index, report: &report)
  }

  /// Opens (or attaches to) a network's persistent TUN; a leftover device of another kind under
  /// that name is replaced.
  private static func openTun(_ name: String, netlink: Netlink) throws -> TunDevice {
    let options = TunOptions(virtioNetHeader: true, nonBlocking: true)
    let tun: TunDevice
    do {
      tun = try TunDevice(name: name, options: options)
    } catch {
      guard try netlink.link(named: name) != nil else { throw error }
      try netlink.deleteLink(name: name)
      tun = try TunDevice(name: name, options: options)
    }
    try tun.setPersistent(true)
    // Offloads, best first: TSO and USO hand over 64 KiB super packets that the VTEP cuts itself;
    // a kernel without USO (before 6.2) still takes TSO; without either, packets come MTU-sized.
    for offloads in Self.offloadChoices where (try? tun.setOffloads(offloads)) != nil { break }
    // The overlay is IPv4: no link-local address, router or multicast listener chatter.
    try? "1\n".write(
      toFile: "/proc/sys/net/ipv6/conf/\(name)/disable_ipv6", atomically: false, encoding: .utf8)
    return tun
  }

  /// What the engine has counted: per network, per peer, drops by reason.
  public var counters: VTEPCounters {
    self.state.withLock { $0.engine?.counters.snapshot } ?? VTEPCounters()
  }

  /// Stops the packet loops and closes the sockets; the persistent TUNs, their addresses and
  /// routes stay for the next agent.
  public func stop() {
    self.state.withLock { state in
      state.engine?.stop()
      state.engine = nil
      state.tuns = [:]
    }
  }
}
