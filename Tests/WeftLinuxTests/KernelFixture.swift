import Foundation
import Testing
import WeftLinux

#if canImport(Glibc)
  import Glibc
#endif

/// Namespaces made by these tests are called `wlt-PID-N`; leftovers of dead runs are removed
/// the first time a fixture is made.
enum KernelFixture {
  static let prefix = "wlt-"
  nonisolated(unsafe) private static var counter = 0
  private static let lock = NSLock()
  private static let sweep: Void = {
    for name in NetworkNamespace.list() where name.hasPrefix(prefix) {
      let pid = name.dropFirst(prefix.count).split(separator: "-").first.flatMap { Int32($0) } ?? 0
      if pid != getpid() && (pid == 0 || kill(pid, 0) != 0) { try? NetworkNamespace(name).delete() }
    }
  }()

  /// A fresh, uniquely named namespace.
  static func makeNamespace() throws -> NetworkNamespace {
    _ = sweep
    let n = lock.withLock {
      counter += 1
      return counter
    }
    return try NetworkNamespace.create("\(prefix)\(getpid())-\(n)")
  }

  /// Runs `body` with a fresh namespace and a netlink socket bound to it; removes it afterwards.
  static func withNamespace<T>(_ body: (NetworkNamespace, Netlink) throws -> T) throws -> T {
    let ns = try makeNamespace()
    defer { try? ns.delete() }
    return try body(ns, try ns.openNetlink())
  }
}

/// Runs an independent tool (`ip`, `bridge`) and returns its standard output.
@discardableResult
func tool(_ args: [String]) throws -> String {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = args
  let out = Pipe()
  let err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  let data = out.fileHandleForReading.readDataToEndOfFile()
  let errData = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  guard p.terminationStatus == 0 else {
    throw ToolError(command: args.joined(separator: " "), stderr: String(decoding: errData, as: UTF8.self))
  }
  return String(decoding: data, as: UTF8.self)
}

struct ToolError: Error, CustomStringConvertible {
  var command: String
  var stderr: String
  var description: String { "\(command) failed: \(stderr)" }
}

/// Runs `ip -j ARGS` (or `bridge -j`) in a namespace and parses the JSON array it prints.
func ipJSON(_ ns: NetworkNamespace, _ args: String..., program: String = "ip") throws -> [[String: Any]] {
  let text = try tool([program, "-n", ns.name, "-j"] + args)
  let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
  return value as? [[String: Any]] ?? []
}

/// True when the running kernel can create links of `kind` (this machine's lacks dummy and vrf).
func kernelSupports(linkKind kind: String) -> Bool {
  guard let ns = try? KernelFixture.makeNamespace() else { return false }
  defer { try? ns.delete() }
  let extra: [String] = kind == "vrf" ? ["table", "10"] : []
  return (try? tool(["ip", "-n", ns.name, "link", "add", "probe0", "type", kind] + extra)) != nil
}
