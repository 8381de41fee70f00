import Foundation
import Testing
import WeftLab
import WeftLinux
import WeftModel

/// Podman set up as docs/cni.md describes, one configuration per lab host: the CNI backend, a
/// plugin directory holding `weft-cni`, a conflist per Weft network naming that host's agent
/// socket, runc with cgroupfs, and a storage root of the test's own.
struct LabPodman {
  let lab: String
  let root: URL

  init(lab: String, hosts: Int, networks: [String]) throws {
    self.lab = lab
    root = URL(fileURLWithPath: "/tmp/weft-podman-\(lab)")
    try? FileManager.default.removeItem(at: root)
    let plugins = root.appendingPathComponent("plugins")
    try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
    let cni = URL(fileURLWithPath: weftBinary).deletingLastPathComponent().appendingPathComponent("weft-cni")
    try FileManager.default.createSymbolicLink(
      at: plugins.appendingPathComponent("weft-cni"), withDestinationURL: cni)
    for host in 1...hosts {
      let dir = root.appendingPathComponent("host\(host)")
      let netd = dir.appendingPathComponent("net.d")
      try FileManager.default.createDirectory(at: netd, withIntermediateDirectories: true)
      for network in networks {
        let conflist = """
          {"cniVersion": "1.0.0", "name": "\(network)", "plugins": [{"type": "weft-cni", \
          "network": "\(network)", "agentSocket": "/run/weft/labs/\(lab)/host\(host)/agent.sock"}]}
          """
        try conflist.write(
          to: netd.appendingPathComponent("\(network).conflist"), atomically: true, encoding: .utf8)
      }
      let conf = """
        [containers]
        default_ulimits = []
        [network]
        network_backend = "cni"
        cni_plugin_dirs = ["\(plugins.path)"]
        network_config_dir = "\(netd.path)"
        [engine]
        runtime = "runc"
        cgroup_manager = "cgroupfs"
        events_logger = "file"
        """
      try conf.write(to: dir.appendingPathComponent("containers.conf"), atomically: true, encoding: .utf8)
    }
  }

  /// Runs podman as if on lab host `host`: in its network namespace only (`nsenter --net`, so runc
  /// still sees the root's cgroup mounts), with that host's containers.conf.
  @discardableResult
  func callAsFunction(_ host: Int, _ args: String...) throws -> (status: Int32, output: String) {
    let command =
      [
        "nsenter", "--net=/run/netns/weft-\(lab)-host\(host)", "podman", "--root",
        root.appendingPathComponent("storage").path, "--runroot", root.appendingPathComponent("run").path,
        "--storage-driver", "vfs",
      ] + args
    // A file, not a pipe: `podman run -d` leaves conmon holding its output open. And our own
    // posix_spawn and waitpid, since Foundation's Process did not notice podman's exit here.
    let log = root.appendingPathComponent("podman-\(UUID().uuidString).log").path
    defer { try? FileManager.default.removeItem(atPath: log) }
    let pid = try Spawn.start(
      command, logPath: log,
      environment: ["CONTAINERS_CONF": root.appendingPathComponent("host\(host)/containers.conf").path])
    let status = try Spawn.wait(pid, command: "podman")
    return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
  }

  /// Imports a one-binary image from the machine's busybox-static (no registry is reachable).
  func importBusybox() throws {
    let rootfs = root.appendingPathComponent("rootfs/bin")
    try FileManager.default.createDirectory(at: rootfs, withIntermediateDirectories: true)
    try FileManager.default.copyItem(
      atPath: "/bin/busybox", toPath: rootfs.appendingPathComponent("busybox").path)
    for tool in ["sh", "ip", "ping", "nc", "sleep", "cat", "echo"] {
      try FileManager.default.createSymbolicLink(
        atPath: rootfs.appendingPathComponent(tool).path, withDestinationPath: "busybox")
    }
    let tar = root.appendingPathComponent("busybox.tar").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
    p.arguments = ["-C", root.appendingPathComponent("rootfs").path, "-cf", tar, "."]
    try p.run()
    p.waitUntilExit()
    let imported = try self(1, "import", tar, "weft-busybox:test")
    guard imported.status == 0 else { throw LabPodmanError(output: imported.output) }
  }

  /// Removes every container, the storage and the configuration.
  func tearDown() {
    _ = try? self(1, "rm", "--all", "--force", "--time", "0")
    _ = try? self(1, "system", "reset", "--force")
    try? FileManager.default.removeItem(at: root)
  }
}

struct LabPodmanError: Error, CustomStringConvertible {
  let output: String
  var description: String { "podman failed: \(output)" }
}

@Suite("podman runs containers on the Weft overlay through weft-cni", .serialized)
struct PodmanScenarioTests {
  let lab = "pm\(getpid() % 100_000)"

  @Test func containersOnTwoHostsReachEachOtherAndOtherNetworksDoNot() async throws {
    _ = try? Lab.down(name: lab)
    #expect(try weftArgs(["lab", "up", lab, "--hosts", "2"]).status == 0)
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
        spec: {cidr: 100.97.0.0/16}
        """
      ).status == 0)
    for host in 1...2 {
      let nl = try NetworkNamespace("weft-\(lab)-host\(host)").openNetlink()
      #expect(try eventually { try nl.link(named: "wbr1") != nil && nl.link(named: "wbr2") != nil })
    }

    let podman = try LabPodman(lab: lab, hosts: 2, networks: ["blue", "red"])
    defer { podman.tearDown() }
    try podman.importBusybox()
    func start(_ name: String, host: Int, network: String) throws -> String {
      let run = try podman(
        host, "run", "-d", "--name", name, "--network", network, "weft-busybox:test", "sleep", "600")
      #expect(run.status == 0, "\(run.output)")
      let addr = try podman(host, "exec", name, "ip", "-4", "-o", "addr", "show", "eth0").output
      let ip = addr.split(separator: " ").first { $0.contains("/") }.map {
        String($0.split(separator: "/")[0])
      }
      return try #require(ip, "no address in \(addr)")
    }
    let a = try start("\(lab)-a", host: 1, network: "blue")
    let b = try start("\(lab)-b", host: 2, network: "blue")
    let r = try start("\(lab)-r", host: 1, network: "red")
    #expect(a.hasPrefix("100.96.") && b.hasPrefix("100.96.") && r.hasPrefix("100.97."))

    // Across the overlay: ping and a TCP exchange between the two hosts' containers.
    let ping = try podman(1, "exec", "\(lab)-a", "ping", "-c", "3", "-W", "2", b)
    #expect(ping.status == 0, "\(ping.output)")
    #expect(try podman(2, "exec", "-d", "\(lab)-b", "sh", "-c", "echo over-weft | nc -l -p 7000").status == 0)
    #expect(
      try eventually(5) {
        try podman(1, "exec", "\(lab)-a", "sh", "-c", "nc \(b) 7000 </dev/null").output.contains("over-weft")
      })

    // Another Weft network: no reply from either blue container.
    #expect(try podman(1, "exec", "\(lab)-r", "ping", "-c", "2", "-W", "1", a).status != 0)
    #expect(try podman(1, "exec", "\(lab)-r", "ping", "-c", "2", "-W", "1", b).status != 0)

    // podman rm: the address returns to the host's pool and the Workload resource goes.
    let ipam = "/run/weft/labs/\(lab)/host1/ipam.json"
    #expect(try String(contentsOfFile: ipam, encoding: .utf8).contains("\"\(a)\""))
    let id = try podman(1, "inspect", "--format", "{{.Id}}", "\(lab)-a").output
    #expect(
      try await Lab.client(lab).list(.workload).items.map(\.metadata.name).contains("c-\(id.prefix(16))"))
    #expect(try podman(1, "rm", "--force", "--time", "0", "\(lab)-a").status == 0)
    #expect(try !String(contentsOfFile: ipam, encoding: .utf8).contains("\"\(a)\""))
    let names = try await Lab.client(lab).list(.workload).items.map(\.metadata.name)
    #expect(names.count == 2, "\(names)")  // b and r remain
    #expect(!names.contains("c-\(id.prefix(16))"), "\(names)")
  }
}
