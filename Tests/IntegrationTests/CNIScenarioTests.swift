import Foundation
import Testing
import WeftLab
import WeftLinux
import WeftWire

/// Runs the built weft-cni with a command, environment and configuration; returns status and
/// the parsed JSON it printed (or nil for empty output).
func cni(
  _ command: String, container: String? = nil, netns: String? = nil, config: [String: Any]
) throws -> (status: Int32, json: [String: Any]?) {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: weftBinary).deletingLastPathComponent().appendingPathComponent(
    "weft-cni")
  var env = ["CNI_COMMAND": command, "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"]
  if let container { env["CNI_CONTAINERID"] = container }
  if let netns { env["CNI_NETNS"] = netns }
  p.environment = env
  let input = Pipe()
  let output = Pipe()
  p.standardInput = input
  p.standardOutput = output
  try p.run()
  input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: config))
  try input.fileHandleForWriting.close()
  let data = output.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  let json = data.isEmpty ? nil : try JSONSerialization.jsonObject(with: data) as? [String: Any]
  return (p.terminationStatus, json)
}

@Suite("weft-cni against a lab host's agent", .serialized)
struct CNIScenarioTests {
  let lab = "cn\(getpid() % 100_000)"

  @Test func specCommandsIdempotenceRollbackConcurrencyAndGC() async throws {
    _ = try? Lab.down(name: lab)
    #expect(try weftArgs(["lab", "up", lab, "--hosts", "2"]).status == 0)
    defer { _ = try? Lab.down(name: lab) }
    #expect(
      try labApply(
        lab, "apiVersion: weft/v1\nkind: Network\nmetadata: {name: blue}\nspec: {cidr: 100.96.0.0/16}\n"
      ).status == 0)
    let socket = "/run/weft/labs/\(lab)/host1/agent.sock"
    let config: [String: Any] = [
      "cniVersion": "1.0.0", "name": "weftnet", "type": "weft-cni", "network": "blue", "agentSocket": socket,
    ]
    let host1 = try NetworkNamespace("weft-\(lab)-host1").openNetlink()
    #expect(try eventually { try host1.link(named: "wbr1") != nil })
    var containers: [NetworkNamespace] = []
    defer { for c in containers { try? c.delete() } }
    func container(_ i: Int) throws -> NetworkNamespace {
      let ns = try NetworkNamespace.create("weft-\(lab)-c\(i)")
      containers.append(ns)
      return ns
    }

    // STATUS, VERSION.
    #expect(try cni("STATUS", config: config).status == 0)
    let version = try cni("VERSION", config: [:])
    #expect((version.json?["supportedVersions"] as? [String])?.contains("1.0.0") == true)

    // ADD: a spec-shaped result, and the interface really is there.
    let c1 = try container(1)
    let add = try cni("ADD", container: "c1c1c1", netns: c1.path, config: config)
    #expect(add.status == 0, "\(add.json ?? [:])")
    let ip = ((add.json?["ips"] as? [[String: Any]])?.first?["address"] as? String) ?? ""
    #expect(ip.hasPrefix("100.96.1."))
    #expect((add.json?["interfaces"] as? [[String: Any]])?.first?["sandbox"] as? String == c1.path)
    let inside = try c1.openNetlink()
    #expect(try inside.addresses(of: "eth0").map(\.prefix.description).contains(ip))
    #expect(try cni("CHECK", container: "c1c1c1", netns: c1.path, config: config).status == 0)
    // CHECK notices a missing address.
    try inside.deleteAddress(try #require(IPPrefix(ip)), from: "eth0")
    let check = try cni("CHECK", container: "c1c1c1", netns: c1.path, config: config)
    #expect(check.status == 1)
    #expect(check.json?["code"] as? Int == 3)

    // mesh: true gives the container a sidecar before ADD returns (its interception rules are in),
    // and the result names the agent's DNS; DEL drains and stops the sidecar.
    var meshed = config
    meshed["mesh"] = true
    let m1 = try container(20)
    let meshAdd = try cni("ADD", container: "m1m1m1", netns: m1.path, config: meshed)
    #expect(meshAdd.status == 0, "\(meshAdd.json ?? [:])")
    let dns = meshAdd.json?["dns"] as? [String: Any]
    #expect(
      dns?["nameservers"] as? [String] == ["100.96.1.1"] && dns?["search"] as? [String] == ["weft"],
      "\(dns ?? [:])")
    let pidFile = "/run/weft/labs/\(lab)/host1/sidecars/c-m1m1m1.pid"
    let sidecar = try #require(
      (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0) }, "no sidecar pid file")
    #expect(Spawn.isAlive(sidecar))
    let rules = try m1.spawnAndWait(["/usr/sbin/nft", "list", "table", "ip", "weft_mesh"])
    #expect(rules == 0, "the sidecar's rules are in the container's namespace")
    #expect(try cni("DEL", container: "m1m1m1", netns: m1.path, config: meshed).status == 0)
    #expect(!Spawn.isAlive(sidecar) && !FileManager.default.fileExists(atPath: pidFile))

    // DEL twice, and once more for a container whose namespace is gone: all succeed.
    #expect(try cni("DEL", container: "c1c1c1", netns: c1.path, config: config).status == 0)
    #expect(try cni("DEL", container: "c1c1c1", netns: c1.path, config: config).status == 0)
    try c1.delete()
    #expect(try cni("DEL", container: "c1c1c1", config: config).status == 0)

    // A failed ADD (no such namespace) leaves no veth and no address behind.
    let linksBefore = try host1.links().count
    let bad = try cni("ADD", container: "badbad", netns: "/run/netns/does-not-exist", config: config)
    #expect(bad.status == 1)
    #expect(try host1.links().count == linksBefore)
    var unknown = config
    unknown["network"] = "green"
    let c9 = try container(9)
    let wrongNet = try cni("ADD", container: "c9c9", netns: c9.path, config: unknown)
    #expect(wrongNet.json?["code"] as? Int == 7, "\(wrongNet.json ?? [:])")

    // Eight ADDs at once: all succeed with distinct addresses.
    let namespaces = try (10..<18).map { try container($0) }
    let addresses = try await withThrowingTaskGroup(of: String.self) { group in
      for (i, ns) in namespaces.enumerated() {
        group.addTask {
          let config: [String: Any] = [
            "cniVersion": "1.0.0", "name": "weftnet", "network": "blue", "agentSocket": socket,
          ]
          let r = try cni("ADD", container: "par\(i)", netns: ns.path, config: config)
          return ((r.json?["ips"] as? [[String: Any]])?.first?["address"] as? String)
            ?? "failed \(r.json ?? [:])"
        }
      }
      var all: [String] = []
      for try await a in group { all.append(a) }
      return all
    }
    #expect(Set(addresses).count == 8, "\(addresses)")
    #expect(addresses.allSatisfy { $0.hasPrefix("100.96.1.") })

    // GC keeps the listed attachments and releases the rest.
    var gc = config
    gc["cniVersion"] = "1.1.0"
    gc["cni.dev/valid-attachments"] = [["containerID": "par0", "ifname": "eth0"]]
    #expect(try cni("GC", config: gc).status == 0)
    let ipam = try String(contentsOfFile: "/run/weft/labs/\(lab)/host1/ipam.json", encoding: .utf8)
    #expect(ipam.contains("c-par0"))
    #expect(!ipam.contains("c-par1"))

    // The agent stopped: a clear "try again later" naming the socket.
    try Lab.stopAgent(lab: lab, host: "host1")
    let down = try cni("ADD", container: "late", netns: namespaces[0].path, config: config)
    #expect(down.json?["code"] as? Int == 11)
    #expect((down.json?["msg"] as? String)?.contains(socket) == true)
    #expect(try cni("STATUS", config: config).json?["code"] as? Int == 50)
  }
}
