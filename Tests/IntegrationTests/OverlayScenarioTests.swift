import Foundation
import Testing
import WeftLab
import WeftLinux
import WeftModel

/// Runs a command in a lab target; returns its exit status and output.
func labExec(_ lab: String, _ target: String, _ command: String...) throws -> (status: Int32, output: String)
{
  try weftArgs(["lab", "exec", lab, target, "--"] + command)
}

/// `weft lab apply LAB -f FILE` with `yaml` in a temporary file that is removed afterwards.
func labApply(_ lab: String, _ yaml: String) throws -> (status: Int32, output: String) {
  let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(lab)-\(UUID().uuidString).yaml")
  defer { try? FileManager.default.removeItem(at: file) }
  try yaml.write(to: file, atomically: true, encoding: .utf8)
  return try weftArgs(["lab", "apply", lab, "-f", file.path])
}

/// Polls `check` every 200 ms for up to `seconds`.
func eventually(_ seconds: Double = 15, _ check: () throws -> Bool) rethrows -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if try check() { return true }
    Thread.sleep(forTimeInterval: 0.2)
  }
  return false
}

@Suite("overlay across a 3-host lab with controller and agents", .serialized)
struct OverlayScenarioTests {
  let lab = "ov\(getpid() % 100_000)"

  /// Run on the kernel datapath, and on a mixed lab: host1 and host2 userspace, host3 kernel,
  /// so every check also covers userspace-userspace and userspace-kernel in both directions.
  @Test(arguments: ["kernel", "userspace,userspace,kernel"])
  func workloadsReachEachOtherAcrossHostsAndNotAcrossNetworks(datapath: String) async throws {
    let lab = self.lab + (datapath == "kernel" ? "k" : "m")
    _ = try? Lab.down(name: lab)
    let up = try weftArgs(["lab", "up", lab, "--hosts", "3", "--datapath", datapath])
    #expect(up.status == 0, "\(up.output)")
    defer { _ = try? Lab.down(name: lab) }
    #expect(
      try labApply(
        lab,
        """
        apiVersion: weft/v1
        kind: Network
        metadata: {name: blue}
        spec: {cidr: 100.96.0.0/16}
        ---
        apiVersion: weft/v1
        kind: Network
        metadata: {name: red}
        spec: {cidr: 100.97.0.0/16, vni: 4242}
        """
      ).status == 0)
    for k in 1...3 {
      let add = try weftArgs([
        "lab", "workload", "add", lab, "b\(k)", "--host", "host\(k)", "--network", "blue",
      ])
      #expect(add.status == 0, "\(add.output)")
    }
    for k in [1, 3] {
      #expect(
        try weftArgs(["lab", "workload", "add", lab, "r\(k)", "--host", "host\(k)", "--network", "red"])
          .status == 0)
    }
    let state = try #require(Lab.load(lab))
    let address = Dictionary(
      uniqueKeysWithValues: (state.workloads ?? []).map {
        ($0.name, String($0.address.split(separator: "/")[0]))
      })

    // Every ordered pair on blue, across hosts, with full-MTU packets and DF set.
    for from in 1...3 {
      for to in 1...3 where from != to {
        let ping = try labExec(
          lab, "b\(from)", "ping", "-c1", "-W2", "-M", "do", "-s", "1422", address["b\(to)"]!)
        #expect(ping.status == 0, "b\(from) -> b\(to): \(ping.output)")
      }
    }
    #expect(try labExec(lab, "r1", "ping", "-c1", "-W2", address["r3"]!).status == 0)
    // Across networks, both directions, local and remote: nothing.
    for (from, to) in [("r1", "b1"), ("r1", "b2"), ("b1", "r3"), ("b3", "r1")] {
      #expect(try labExec(lab, from, "ping", "-c1", "-W1", address[to]!).status != 0, "\(from) -> \(to)")
    }

    // 64 MiB of TCP, segments bigger than the overlay MTU would be without PMTU handling.
    let server = try NetworkNamespace("weft-\(lab)-wl.b2").spawnDetached(
      ["iperf3", "-s", "-1", "-p", "5201"], logPath: "/dev/null")
    defer { Spawn.stop(server) }
    try await Task.sleep(for: .milliseconds(300))
    let transfer = try labExec(lab, "b1", "iperf3", "-c", address["b2"]!, "-n", "64M", "-p", "5201")
    #expect(transfer.status == 0, "\(transfer.output)")
    // And the other way round, from host3 to host1 (kernel to userspace in the mixed lab).
    let server1 = try NetworkNamespace("weft-\(lab)-wl.b1").spawnDetached(
      ["iperf3", "-s", "-1", "-p", "5203"], logPath: "/dev/null")
    defer { Spawn.stop(server1) }
    try await Task.sleep(for: .milliseconds(300))
    let back = try labExec(lab, "b3", "iperf3", "-c", address["b1"]!, "-n", "64M", "-p", "5203")
    #expect(back.status == 0, "\(back.output)")
    if datapath != "kernel" {
      // The userspace VTEP's counters, read from the agent's socket by an independent client.
      let curl = Process()
      curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
      curl.arguments = [
        "-s", "--unix-socket", "/run/weft/labs/\(lab)/host1/agent.sock", "http://agent/v1/counters",
      ]
      let out = Pipe()
      curl.standardOutput = out
      try curl.run()
      let body = out.fileHandleForReading.readDataToEndOfFile()
      curl.waitUntilExit()
      let json = try JSONSerialization.jsonObject(with: body) as? [String: Any]
      #expect(json?["datapath"] as? String == "userspace")
      let blue =
        ((json?["counters"] as? [String: Any])?["networks"] as? [String: Any])?["blue"] as? [String: Any]
      #expect((blue?["txBytes"] as? Int ?? 0) > 48 << 20, "\(json ?? [:])")
      #expect((blue?["rxBytes"] as? Int ?? 0) > 48 << 20, "\(json ?? [:])")
    }

    // An agent restarted during a transfer leaves it unbroken.
    let server2 = try NetworkNamespace("weft-\(lab)-wl.b3").spawnDetached(
      ["iperf3", "-s", "-1", "-p", "5202"], logPath: "/dev/null")
    defer { Spawn.stop(server2) }
    try await Task.sleep(for: .milliseconds(300))
    async let during = Task.detached {
      try labExec(lab, "b1", "iperf3", "-c", address["b3"]!, "-t", "3", "-p", "5202")
    }.value
    try await Task.sleep(for: .milliseconds(800))
    try await Lab.startAgent(lab: lab, host: "host1")  // restarts the running agent
    let result = try await during
    let restarted = try #require(Lab.load(lab)?.control?.agents["host1"])
    let cmdline = String(
      decoding: FileManager.default.contents(atPath: "/proc/\(restarted)/cmdline") ?? Data(), as: UTF8.self)
    #expect(cmdline.contains("agent"), "the restarted agent runs: \(cmdline)")
    #expect(result.status == 0, "\(result.output)")

    // With the controller stopped, the overlay keeps working. (A userspace agent holds its
    // datapath in its process: the restarted one must have synced once before the controller
    // goes, which on a loaded machine takes a moment; then the ping may take a few tries.)
    let socket = "/run/weft/labs/\(lab)/host1/agent.sock"
    #expect(
      eventually(20) {
        (try? weftArgs([
          "lab", "exec", lab, "host1", "--", "curl", "-sf", "--unix-socket", socket, "http://agent/v1/status",
        ]))?
        .output.contains("\"ready\":true") == true
      }, "the restarted agent synced")
    try Lab.stopController(lab: lab)
    #expect(eventually(10) { (try? labExec(lab, "b1", "ping", "-c1", "-W2", address["b3"]!))?.status == 0 })
    // It comes back on its data; the agents reconnect and follow a change made after it.
    try await Lab.restartController(lab: lab)
    #expect(
      try labApply(
        lab,
        "apiVersion: weft/v1\nkind: Network\nmetadata: {name: green}\nspec: {cidr: 100.98.0.0/16, vni: 77}\n"
      ).status == 0)
    let host3 = try NetworkNamespace("weft-\(lab)-host3").openNetlink()
    #expect(try eventually(30) { try host3.link(named: "wvx77") != nil })
    #expect(try labExec(lab, "b1", "ping", "-c1", "-W2", address["b3"]!).status == 0)
  }

  @Test func aHostThatLeavesIsRemovedEverywhere() async throws {
    let name = lab + "x"
    _ = try? Lab.down(name: name)
    #expect(try weftArgs(["lab", "up", name, "--hosts", "3"]).status == 0)
    defer { _ = try? Lab.down(name: name) }
    #expect(
      try labApply(
        name, "apiVersion: weft/v1\nkind: Network\nmetadata: {name: blue}\nspec: {cidr: 100.96.0.0/16}\n"
      ).status == 0)
    let host1 = NetworkNamespace("weft-\(name)-host1")
    let nl = try host1.openNetlink()
    #expect(try eventually { try nl.routes().filter { $0.proto == 0x57 }.count == 2 })
    // host3's agent stops and the host is deleted: host1 drops its route, neighbour and FDB entry.
    try Lab.stopAgent(lab: name, host: "host3")
    let client = try Lab.client(name)
    _ = try await client.delete(ResourceKey(kind: .host, name: "host3"))
    #expect(try eventually { try nl.routes().filter { $0.proto == 0x57 }.count == 1 })
    #expect(try eventually { try nl.neighbors(of: "wvx1").count == 1 })
    #expect(try eventually { try nl.fdb(of: "wvx1").filter { $0.destination != nil }.count == 1 })
    let left = try nl.fdb(of: "wvx1").compactMap(\.destination).map(\.description)
    #expect(left == ["198.18.0.2"])
  }
}
