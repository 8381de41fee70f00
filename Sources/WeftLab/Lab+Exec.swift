import Foundation
import WeftLinux

#if canImport(Glibc)
  import Glibc
#endif

extension Lab {
  /// Runs `command` inside a lab target's network namespace (`host1`..., or `switch`) and returns
  /// its exit status. Only the network namespace is entered, as `nsenter --net` does: the mount
  /// namespace and /sys stay as they are, so tools such as runc keep their cgroup mounts.
  /// Standard input, output and error are inherited.
  public static func exec(lab name: String, target: String, command: [String]) throws -> Int32 {
    try Self.validate(name: name)
    try Self.requirePrivileges()
    guard let state = Self.load(name) else {
      throw LabError(.notFound, "no lab '\(name)' (see: weft lab list)")
    }
    guard let ns = state.namespace(for: target) else {
      let targets = state.hosts.map(\.name) + ["switch"]
      throw LabError(
        .badInput, "lab '\(name)' has no target '\(target)'; targets: \(targets.joined(separator: ", "))")
    }
    guard !command.isEmpty else {
      throw LabError(.badInput, "no command given (weft lab exec LAB TARGET -- CMD ARGS...)")
    }
    return try NetworkNamespace(ns).spawnAndWait(command)
  }
}
