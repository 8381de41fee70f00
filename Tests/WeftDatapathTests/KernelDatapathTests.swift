import Foundation
import Testing
import WeftAgent
import WeftDatapath
import WeftLinux
import WeftModel
import WeftWire

func network(_ name: String, vni: UInt32, subnet: String, peers: [Peer], mtu: UInt32 = 1450) -> DesiredNetwork
{
  let s = IPPrefix(subnet)!
  return DesiredNetwork(
    name: name, vni: vni, subnet: s, vtepMAC: DesiredStateBuilder.vtepMAC(s), mtu: mtu, peers: peers)
}

func peer(_ host: String, _ subnet: String, _ underlay: String) -> Peer {
  let s = IPPrefix(subnet)!
  return Peer(host: host, subnet: s, vtepMAC: DesiredStateBuilder.vtepMAC(s), underlay: IPAddress(underlay)!)
}

/// The namespace-local firewall: `nft` run inside the namespace.
func nftIn(_ ns: NetworkNamespace) -> @Sendable (String) throws -> Void {
  { rules in try ns.perform { try KernelDatapath.nft(rules) } }
}

@Suite("kernel VXLAN datapath on real namespaces", .serialized)
struct KernelDatapathTests {
  @Test func twoHostsReachEachOtherAndReconcileIsIdempotent() throws {
    let lab = try TwoHosts()
    defer { lab.close() }
    let blue1 = network(
      "blue", vni: 11, subnet: "100.96.1.0/24", peers: [peer("h2", "100.96.2.0/24", "198.18.0.2")])
    let blue2 = network(
      "blue", vni: 11, subnet: "100.96.2.0/24", peers: [peer("h1", "100.96.1.0/24", "198.18.0.1")])
    let dp = (0..<2).map { KernelDatapath(netlink: lab.netlinks[$0], firewall: nftIn(lab.hosts[$0])) }
    let states = [
      DesiredState(underlay: IPAddress("198.18.0.1")!, underlayDevice: "eth0", networks: [blue1]),
      DesiredState(underlay: IPAddress("198.18.0.2")!, underlayDevice: "eth0", networks: [blue2]),
    ]
    for i in 0..<2 { #expect(try !dp[i].reconcile(states[i]).isEmpty) }
    // A second pass changes nothing.
    for i in 0..<2 { #expect(try dp[i].reconcile(states[i]).isEmpty) }

    // What the kernel holds, read with ip/bridge.
    let h1 = lab.hosts[0]
    let vx = try #require(try json(h1, "ip", "-d", "link", "show", "wvx11").first)
    let data = (vx["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
    #expect(data?["id"] as? Int == 11)
    #expect(data?["learning"] as? Bool == false)
    #expect(vx["mtu"] as? Int == 1450)
    #expect(vx["address"] as? String == "02:57:64:60:01:00")
    let route = try #require(try json(h1, "ip", "route", "show", "100.96.2.0/24").first)
    #expect(route["gateway"] as? String == "100.96.2.0")
    #expect(route["dev"] as? String == "wvx11")
    let neigh = try #require(try json(h1, "ip", "neigh", "show", "dev", "wvx11").first)
    #expect(neigh["lladdr"] as? String == "02:57:64:60:02:00")
    let fdb = try json(h1, "bridge", "fdb", "show", "dev", "wvx11").filter { $0["dst"] != nil }
    #expect(fdb.count == 1)
    #expect(fdb.first?["dst"] as? String == "198.18.0.2")

    // Workloads on both hosts reach each other across the overlay, with full-MTU packets.
    let w1 = try lab.addWorkload(
      host: 0, bridge: "wbr11", address: "100.96.1.10", gateway: "100.96.1.1", length: 24, mtu: 1450)
    _ = try lab.addWorkload(
      host: 1, bridge: "wbr11", address: "100.96.2.10", gateway: "100.96.2.1", length: 24, mtu: 1450)
    #expect(try run(w1, "ping", "-c", "1", "-W", "2", "100.96.2.10") == 0)
    // Full-size packets with DF set fit the derived MTU: no fragmentation, no black hole.
    #expect(try run(w1, "ping", "-c", "2", "-W", "2", "-M", "do", "-s", "1422", "100.96.2.10") == 0)

    // The peer leaves: its route, neighbour and FDB entry go.
    var alone = states[0]
    alone.networks[0].peers = []
    let report = try dp[0].reconcile(alone)
    #expect(report.changes.count == 3)
    #expect(try json(h1, "ip", "route", "show", "100.96.2.0/24").isEmpty)
    #expect(try json(h1, "ip", "neigh", "show", "dev", "wvx11").isEmpty)
    #expect(try json(h1, "bridge", "fdb", "show", "dev", "wvx11").filter { $0["dst"] != nil }.isEmpty)
    #expect(try run(w1, "ping", "-c", "1", "-W", "1", "100.96.2.10") != 0)

    // Drift is repaired: a deleted route comes back on the next reconcile.
    _ = try dp[0].reconcile(states[0])
    try lab.netlinks[0].deleteRoute(
      Route(
        destination: IPPrefix("100.96.2.0/24")!, gateway: IPAddress("100.96.2.0"),
        outputIndex: try lab.netlinks[0].index(of: "wvx11", for: "test"), onLink: true))
    #expect(try dp[0].reconcile(states[0]).changes == ["add route 100.96.2.0/24 via 100.96.2.0 dev wvx11"])

    // The network is deleted: its devices go.
    _ = try dp[0].reconcile(
      DesiredState(underlay: IPAddress("198.18.0.1")!, underlayDevice: "eth0", networks: []))
    #expect(
      try json(h1, "ip", "link", "show").allSatisfy { ($0["ifname"] as? String)?.hasPrefix("wvx") != true })
  }

  @Test func networksAreIsolatedFromEachOther() async throws {
    let lab = try TwoHosts()
    defer { lab.close() }
    let nets1 = [
      network("a", vni: 21, subnet: "100.96.1.0/24", peers: [peer("h2", "100.96.2.0/24", "198.18.0.2")]),
      network("b", vni: 22, subnet: "100.97.1.0/24", peers: [peer("h2", "100.97.2.0/24", "198.18.0.2")]),
    ]
    let nets2 = [
      network("a", vni: 21, subnet: "100.96.2.0/24", peers: [peer("h1", "100.96.1.0/24", "198.18.0.1")]),
      network("b", vni: 22, subnet: "100.97.2.0/24", peers: [peer("h1", "100.97.1.0/24", "198.18.0.1")]),
    ]
    for (i, nets) in [nets1, nets2].enumerated() {
      let dp = KernelDatapath(netlink: lab.netlinks[i], firewall: nftIn(lab.hosts[i]))
      _ = try dp.reconcile(
        DesiredState(underlay: IPAddress("198.18.0.\(i + 1)")!, underlayDevice: "eth0", networks: nets))
    }
    let a1 = try lab.addWorkload(
      host: 0, bridge: "wbr21", address: "100.96.1.10", gateway: "100.96.1.1", length: 24, mtu: 1450)
    _ = try lab.addWorkload(
      host: 1, bridge: "wbr21", address: "100.96.2.10", gateway: "100.96.2.1", length: 24, mtu: 1450)
    let b1 = try lab.addWorkload(
      host: 0, bridge: "wbr22", address: "100.97.1.10", gateway: "100.97.1.1", length: 24, mtu: 1450)
    _ = try lab.addWorkload(
      host: 1, bridge: "wbr22", address: "100.97.2.10", gateway: "100.97.2.1", length: 24, mtu: 1450)
    // Within a network: yes, both ways.
    #expect(try run(a1, "ping", "-c", "1", "-W", "2", "100.96.2.10") == 0)
    #expect(try run(b1, "ping", "-c", "1", "-W", "2", "100.97.2.10") == 0)
    // Across networks, local or remote, both directions: no.
    #expect(try run(a1, "ping", "-c", "1", "-W", "1", "100.97.1.10") != 0)
    #expect(try run(a1, "ping", "-c", "1", "-W", "1", "100.97.2.10") != 0)
    #expect(try run(b1, "ping", "-c", "1", "-W", "1", "100.96.2.10") != 0)
    #expect(try run(b1, "ping", "-c", "1", "-W", "1", "100.96.1.10") != 0)
    // A crafted VXLAN packet carrying network a's VNI but addressed to b's workload on host 1
    // (sent by scapy from host 2's underlay) is decapsulated into a and never delivered into b.
    let vtepSeen = { () throws -> Int in
      let link = try json(lab.hosts[0], "ip", "-s", "link", "show", "wvx21").first
      let rx = (link?["stats64"] as? [String: Any])?["rx"] as? [String: Any] ?? [:]
      return ["packets", "errors", "dropped"].compactMap { rx[$0] as? Int }.reduce(0, +)
    }
    // b1 counts echo requests addressed to it.
    let probe =
      "add table inet probe; add chain inet probe input { type filter hook input priority 0; }; "
      + "add rule inet probe input icmp type echo-request counter"
    #expect(try run(b1, "nft", probe) == 0)
    let seenBefore = try vtepSeen()
    let forged = """
      from scapy.all import Ether, IP, UDP, ICMP, sendp
      from scapy.layers.vxlan import VXLAN
      inner = Ether(src="02:57:64:60:02:00", dst="02:57:64:60:01:00") / IP(src="100.96.2.10", dst="100.97.1.10") / ICMP()
      outer = Ether(dst="ff:ff:ff:ff:ff:ff") / IP(src="198.18.0.2", dst="198.18.0.1") / UDP(sport=50000, dport=4789) / VXLAN(vni=21) / inner
      sendp(outer, iface="eth0", count=5, verbose=False)
      """
    #expect(try run(lab.hosts[1], "/usr/bin/python3", "-c", forged) == 0)
    try await Task.sleep(for: .milliseconds(300))
    #expect(try vtepSeen() >= seenBefore + 5)  // the packets reached host 1's VTEP for network a...
    // The probe itself counts: one real echo request from host 1 to b1.
    #expect(try run(lab.hosts[0], "ping", "-c", "1", "-W", "2", "100.97.1.10") == 0)
    let probeRule = try json(b1, "nft", "list", "table", "inet", "probe").compactMap {
      ($0["rule"] as? [String: Any])?["expr"] as? [[String: Any]]
    }.flatMap { $0 }.compactMap { ($0["counter"] as? [String: Any])?["packets"] as? Int }
    #expect(probeRule == [1])  // ...and none was delivered into network b (only the real ping)

    // The drops are the isolation rules' doing.
    let rules = try json(lab.hosts[0], "nft", "list", "table", "inet", "weft")
    let counters = rules.compactMap { ($0["rule"] as? [String: Any])?["expr"] as? [[String: Any]] }
      .flatMap { $0 }.compactMap { ($0["counter"] as? [String: Any])?["packets"] as? Int }
    #expect(counters.reduce(0, +) >= 2)
  }
}

@Suite("desired state from resources")
struct DesiredStateBuilderTests {
  @Test func peersAreTheOtherLeaseHolders() throws {
    var blue = try Resource(kind: .network, name: "blue", spec: NetworkSpec(cidr: "100.96.0.0/16"))
    blue.status = try JSONValue(
      encoding: NetworkStatus(
        vni: 5, leases: ["h1": "100.96.1.0/24", "h2": "100.96.2.0/24", "h3": "100.96.3.0/24"]))
    var hosts: [Resource] = []
    for k in 1...3 {
      var h = try Resource(kind: .host, name: "h\(k)", spec: HostSpec(underlay: "198.18.0.\(k)"))
      h.status = try JSONValue(encoding: HostStatus())
      hosts.append(h)
    }
    let state = DesiredStateBuilder.build(
      host: "h2", underlay: IPAddress("198.18.0.2")!, underlayDevice: "eth0", underlayMTU: 1500,
      networks: [blue],
      hosts: hosts)
    let n = try #require(state.networks.first)
    #expect(n.vni == 5)
    #expect(n.mtu == 1450)  // auto: 1500 - 50 on an IPv4 underlay
    #expect(n.subnet.description == "100.96.2.0/24")
    #expect(n.gateway.description == "100.96.2.1/24")
    #expect(n.peers.map(\.host) == ["h1", "h3"])
    #expect(n.peers[1].underlay == IPAddress("198.18.0.3"))
    // A host without a lease has no networks; IPv6 underlays lose 70 bytes.
    #expect(
      DesiredStateBuilder.build(
        host: "h9", underlay: IPAddress("198.18.0.9")!, underlayDevice: "eth0",
        underlayMTU: 1500, networks: [blue], hosts: hosts
      ).networks.isEmpty)
    let v6 = DesiredStateBuilder.build(
      host: "h1", underlay: IPAddress("fd00::1")!, underlayDevice: "eth0",
      underlayMTU: 1500, networks: [blue], hosts: hosts)
    #expect(v6.networks.first?.mtu == 1430)
  }
}
