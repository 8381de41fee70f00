import Foundation
import WeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// Two "hosts" (namespaces `wdp-PID-N-hK`) joined by a veth underlay 198.18.0.1-2/24, with
/// helpers to add "workloads" (namespaces with a veth into a host's bridge). Everything is
/// removed by `close()`; leftovers of dead runs are swept on creation.
final class TwoHosts: @unchecked Sendable {
  static let prefix = "wdp-"
  nonisolated(unsafe) static var counter = 0
  static let lock = NSLock()

  let id: String
  var namespaces: [NetworkNamespace] = []
  let hosts: [NetworkNamespace]
  let netlinks: [Netlink]

  init() throws {
    for name in NetworkNamespace.list() where name.hasPrefix(Self.prefix) {
      let pid = name.dropFirst(Self.prefix.count).split(separator: "-").first.flatMap { Int32($0) } ?? 0
      if pid != getpid() && (pid == 0 || kill(pid, 0) != 0) { try? NetworkNamespace(name).delete() }
    }
    let n = Self.lock.withLock {
      Self.counter += 1
      return Self.counter
    }
    self.id = "\(Self.prefix)\(getpid())-\(n)"
    let h1 = try NetworkNamespace.create("\(id)-h1")
    let h2 = try NetworkNamespace.create("\(id)-h2")
    self.namespaces = [h1, h2]
    self.hosts = [h1, h2]
    self.netlinks = [try h1.openNetlink(), try h2.openNetlink()]
    try netlinks[0].createLink(name: "eth0", kind: .veth(peer: "eth0", peerNamespace: h2))
    for (i, nl) in netlinks.enumerated() {
      try nl.setUp("lo")
      try nl.addAddress(IPPrefix("198.18.0.\(i + 1)/24")!, to: "eth0")
      try nl.setUp("eth0")
    }
  }

  /// Adds a workload namespace behind host `host`'s bridge `bridge` with `address`/`length`.
  func addWorkload(host: Int, bridge: String, address: String, gateway: String, length: Int, mtu: UInt32)
    throws -> NetworkNamespace
  {
    let ns = try NetworkNamespace.create("\(id)-w\(namespaces.count)")
    namespaces.append(ns)
    let nl = netlinks[host]
    let hostSide = "wv\(namespaces.count)"
    try nl.createLink(name: hostSide, kind: .veth(peer: "eth0", peerNamespace: ns), mtu: mtu)
    try nl.setMaster(hostSide, master: bridge)
    try nl.setUp(hostSide)
    let w = try ns.openNetlink()
    try w.setUp("lo")
    try w.addAddress(IPPrefix("\(address)/\(length)")!, to: "eth0")
    try w.setUp("eth0")
    let index = try w.index(of: "eth0", for: "route")
    try w.addRoute(
      Route(destination: IPPrefix("0.0.0.0/0")!, gateway: IPAddress(gateway), outputIndex: index))
    return ns
  }

  func close() {
    for ns in namespaces { try? ns.delete() }
  }
}

/// Runs a command in a namespace; returns its exit status.
func run(_ ns: NetworkNamespace, _ command: String...) throws -> Int32 {
  try ns.spawnAndWait(command)
}

/// `ip -j ARGS` (or another program) in a namespace, parsed.
func json(_ ns: NetworkNamespace, _ program: String, _ args: String...) throws -> [[String: Any]] {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  // nft has no namespace flag of its own (its -n means numeric): enter the namespace for it.
  p.arguments =
    program == "nft"
    ? ["ip", "netns", "exec", ns.name, "nft", "-j"] + args : [program, "-n", ns.name, "-j"] + args
  let out = Pipe()
  p.standardOutput = out
  try p.run()
  let data = out.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  let value = try? JSONSerialization.jsonObject(with: data)
  // nft wraps its list in {"nftables": [...]}.
  return value as? [[String: Any]] ?? (value as? [String: Any])?["nftables"] as? [[String: Any]] ?? []
}
