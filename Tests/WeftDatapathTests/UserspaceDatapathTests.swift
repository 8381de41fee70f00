import Foundation
import Testing
import WeftDatapath
import WeftLinux
import WeftWire

/// Runs a command in a namespace with its output in a file; returns status and output.
func output(_ ns: NetworkNamespace, _ command: String...) throws -> (Int32, String) {
  let log = FileManager.default.temporaryDirectory.appendingPathComponent("wdp-\(UUID().uuidString).log").path
  defer { try? FileManager.default.removeItem(atPath: log) }
  let pid = try ns.perform { try Spawn.start(command, logPath: log) }
  let status = try Spawn.wait(pid, command: command[0])
  return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
}

/// Two hosts, blue (VNI 11) on both; host 1 runs the userspace datapath, host 2 `second`.
struct MixedHosts {
  let lab: TwoHosts
  let userspace: UserspaceDatapath
  let second: any Datapath
  let w1: NetworkNamespace
  let w2: NetworkNamespace

  init(secondUserspace: Bool) throws {
    lab = try TwoHosts()
    let blue1 = network(
      "blue", vni: 11, subnet: "100.96.1.0/24", peers: [peer("h2", "100.96.2.0/24", "198.18.0.2")])
    let blue2 = network(
      "blue", vni: 11, subnet: "100.96.2.0/24", peers: [peer("h1", "100.96.1.0/24", "198.18.0.1")])
    userspace = UserspaceDatapath(netlink: lab.netlinks[0], firewall: nftIn(lab.hosts[0]))
    second =
      secondUserspace
      ? UserspaceDatapath(netlink: lab.netlinks[1], firewall: nftIn(lab.hosts[1]))
      : KernelDatapath(netlink: lab.netlinks[1], firewall: nftIn(lab.hosts[1]))
    let s1 = DesiredState(underlay: IPAddress("198.18.0.1")!, underlayDevice: "eth0", networks: [blue1])
    let s2 = DesiredState(underlay: IPAddress("198.18.0.2")!, underlayDevice: "eth0", networks: [blue2])
    let (dp1, dp2) = (userspace, second)
    // Sockets and TUNs open in the calling thread's namespace: reconcile inside each host.
    _ = try lab.hosts[0].perform { try dp1.reconcile(s1) }
    _ = try lab.hosts[1].perform { try dp2.reconcile(s2) }
    w1 = try lab.addWorkload(
      host: 0, bridge: "wbr11", address: "100.96.1.10", gateway: "100.96.1.1", length: 24, mtu: 1450)
    w2 = try lab.addWorkload(
      host: 1, bridge: "wbr11", address: "100.96.2.10", gateway: "100.96.2.1", length: 24, mtu: 1450)
  }

  func close() {
    userspace.stop()
    (second as? UserspaceDatapath)?.stop()
    lab.close()
  }

  /// Sends one UDP datagram of `size` bytes from `client` to an echo in `server`; true when the
  /// same bytes came back.
  func udpEcho(from client: NetworkNamespace, to server: NetworkNamespace, address: String, size: Int) throws
    -> Bool
  {
    let echo =
      "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 7007)); "
      + "s.settimeout(5); d, a = s.recvfrom(65535); s.sendto(d, a)"
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("wdp-echo-\(UUID().uuidString)")
      .path
    defer { try? FileManager.default.removeItem(atPath: log) }
    let pid = try server.spawnDetached(["/usr/bin/python3", "-c", echo], logPath: log)
    defer { Spawn.stop(pid) }
    Thread.sleep(forTimeInterval: 0.3)
    let ask =
      "import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); "
      + "d = bytes(range(256)) * \(size / 256 + 1); d = d[:\(size)]; s.sendto(d, ('\(address)', 7007)); "
      + "sys.exit(0 if s.recv(65535) == d else 1)"
    return try run(client, "/usr/bin/python3", "-c", ask) == 0
  }

  /// Sends `bytes` over TCP from `client` to `server` with iperf3; true when it completed.
  func transfer(from client: NetworkNamespace, to server: NetworkNamespace, address: String, bytes: String)
    throws
    -> Bool
  {
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("wdp-iperf-\(UUID().uuidString)")
      .path
    defer { try? FileManager.default.removeItem(atPath: log) }
    let serverPID = try server.spawnDetached(["iperf3", "-s", "-1", "-p", "5299"], logPath: log)
    defer { Spawn.stop(serverPID) }
    Thread.sleep(forTimeInterval: 0.3)
    let (status, text) = try output(
      client, "iperf3", "-c", address, "-p", "5299", "-n", bytes, "--connect-timeout", "3000")
    if status != 0 { Issue.record("iperf3 to \(address): \(text)") }
    return status == 0
  }
}

@Suite("userspace VXLAN datapath on real namespaces", .serialized)
struct UserspaceDatapathTests {
  @Test func userspaceAndKernelHostsInteroperateBothWays() throws {
    let m = try MixedHosts(secondUserspace: false)
    defer { m.close() }
    let h1 = m.lab.hosts[0]
    let tun = try #require(try json(h1, "ip", "-d", "link", "show", "wtun11").first)
    #expect((tun["linkinfo"] as? [String: Any])?["info_kind"] as? String == "tun")
    #expect(tun["mtu"] as? Int == 1450)
    let route = try #require(try json(h1, "ip", "route", "show", "100.96.2.0/24").first)
    #expect(route["dev"] as? String == "wtun11")

    // Ping both ways, then full-size DF packets both ways: the overlay MTU holds end to end.
    #expect(try run(m.w1, "ping", "-c", "2", "-W", "2", "100.96.2.10") == 0)
    #expect(try run(m.w2, "ping", "-c", "2", "-W", "2", "100.96.1.10") == 0)
    #expect(try run(m.w1, "ping", "-c", "2", "-W", "2", "-M", "do", "-s", "1422", "100.96.2.10") == 0)
    #expect(try run(m.w2, "ping", "-c", "2", "-W", "2", "-M", "do", "-s", "1422", "100.96.1.10") == 0)
    // One byte more: the sender learns the MTU (an ICMP "fragmentation needed"), no black hole.
    let (status, text) = try output(
      m.w1, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1423", "100.96.2.10")
    #expect(status != 0)
    #expect(text.contains("mtu = 1450") || text.contains("message too long"), "\(text)")

    // UDP both ways: an echo of one small and one 4000-byte datagram (fragmented on the overlay).
    for size in [64, 4000] {
      #expect(try m.udpEcho(from: m.w1, to: m.w2, address: "100.96.2.10", size: size), "u->k \(size)")
      #expect(try m.udpEcho(from: m.w2, to: m.w1, address: "100.96.1.10", size: size), "k->u \(size)")
    }

    // TCP both ways, 64 MiB each, segments at the MTU.
    #expect(try m.transfer(from: m.w1, to: m.w2, address: "100.96.2.10", bytes: "64M"))
    #expect(try m.transfer(from: m.w2, to: m.w1, address: "100.96.1.10", bytes: "64M"))

    Thread.sleep(forTimeInterval: 0.2)  // the loops merge their counts after each batch
    let c = m.userspace.counters
    let blue = try #require(c.networks["blue"])
    // Most of each 64 MiB went through the VTEP (iperf3 -n counts what the sender wrote; what was
    // still in flight when it ended is not received). The kernel peer's TCP arrives partly as
    // unsegmented GSO packets, each counted once, so bytes are compared, not packets.
    #expect(blue.rxBytes > 48 << 20 && blue.txBytes > 48 << 20, "\(blue)")
    #expect(c.peers["198.18.0.2"]?.rxBytes == blue.rxBytes)
    #expect(c.drops.isEmpty, "\(c.drops)")
  }

  @Test func hostileInputIsDroppedAndCountedWhileATransferCompletes() async throws {
    let m = try MixedHosts(secondUserspace: true)
    defer { m.close() }
    #expect(try run(m.w1, "ping", "-c", "1", "-W", "2", "100.96.2.10") == 0)
    // A transfer to host 1's workload runs while host 2's underlay fires junk at host 1's VTEP.
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("wdp-iperf-\(UUID().uuidString)")
      .path
    defer { try? FileManager.default.removeItem(atPath: log) }
    let server = try m.w1.spawnDetached(["iperf3", "-s", "-1", "-p", "5298"], logPath: log)
    defer { Spawn.stop(server) }
    try await Task.sleep(for: .milliseconds(300))
    let client = try m.w2.perform {
      try Spawn.start(["iperf3", "-c", "100.96.1.10", "-p", "5298", "-n", "64M"], logPath: log + ".client")
    }
    let mac = try #require(
      try json(m.lab.hosts[0], "ip", "link", "show", "eth0").first?["address"] as? String)
    let hostile = """
      import os
      from scapy.all import IP, UDP, Ether, Raw, sendp
      from scapy.layers.vxlan import VXLAN
      h1 = "198.18.0.1"
      mac1, mac2 = "02:57:64:60:01:00", "02:57:64:60:02:00"
      def vx(vni=11, flags=0x08, src="100.96.2.10", dst="100.96.1.10", outer="198.18.0.2", mac=mac1):
          inner = Ether(src=mac2, dst=mac) / IP(src=src, dst=dst) / UDP(sport=9, dport=9) / Raw(b"x" * 20)
          return IP(src=outer, dst=h1) / UDP(sport=40000, dport=4789) / VXLAN(vni=vni, flags=flags) / inner
      junk = []
      junk += [IP(src="198.18.0.2", dst=h1) / UDP(sport=40000, dport=4789) / Raw(b"\\x08\\0\\0\\0\\0\\0\\x0b")] * 5
      junk += [vx(vni=99)] * 5                      # unknown VNI
      junk += [vx(flags=0x00)] * 5                  # I flag clear
      junk += [vx(src="100.96.7.7")] * 5            # forged inner source
      junk += [vx(outer="198.18.0.9")] * 5          # not a member host
      junk += [vx(mac="02:00:00:00:00:01")] * 5     # not our VTEP MAC
      junk += [IP(src="198.18.0.2", dst=h1) / UDP(sport=40000, dport=4789) / Raw(os.urandom(n)) for n in range(1, 300, 3)]
      sendp([Ether(dst="\(mac)") / p for p in junk], iface="eth0", inter=0.001, verbose=False)
      """
    #expect(try run(m.lab.hosts[1], "/usr/bin/python3", "-c", hostile) == 0)
    #expect(try Spawn.wait(client, command: "iperf3") == 0, "the transfer did not complete")
    try? FileManager.default.removeItem(atPath: log + ".client")
    // Under load the socket may shed a few of them; every reason is seen.
    let during = m.userspace.counters
    for reason in [
      "truncated", "unknown-vni", "bad-flags", "forged-source", "unknown-peer", "wrong-inner-mac",
    ] {
      #expect(during.drops[reason] ?? 0 >= 1, "\(reason): \(during.drops)")
    }
    #expect(during.networks["blue"]?.rxBytes ?? 0 > 48 << 20)
    // Idle, the same junk again: each packet counted exactly once, by reason and by peer.
    #expect(try run(m.lab.hosts[1], "/usr/bin/python3", "-c", hostile) == 0)
    try await Task.sleep(for: .milliseconds(200))
    let after = m.userspace.counters
    func delta(_ peer: String, _ reason: String) -> UInt64 {
      (after.peers[peer]?.drops[reason] ?? 0) - (during.peers[peer]?.drops[reason] ?? 0)
    }
    #expect(delta("198.18.0.9", "unknown-peer") == 5)
    #expect(delta("198.18.0.2", "forged-source") == 5)
    #expect(delta("198.18.0.2", "wrong-inner-mac") == 5)
    let total = { (c: VTEPCounters) in c.drops.values.reduce(0, +) }
    #expect(total(after) - total(during) == 30 + 100)  // the six kinds, five each, and 100 random
    // And the datapath still carries traffic.
    #expect(try run(m.w1, "ping", "-c", "1", "-W", "2", "100.96.2.10") == 0)
  }
}
