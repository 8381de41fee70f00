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
      throw LabError(.badInput, "lab '\(name)' has no target '\(target)'; targets: \(targets.joined(separator: ", "))")
    }
    guard !command.isEmpty else { throw LabError(.badInput, "no command given (weft lab exec LAB TARGET -- CMD ARGS...)") }
    return try NetworkNamespace(ns).spawnAndWait(command)
  }
}

extension NetworkNamespace {
  /// Starts `command` (looked up on PATH) in this network namespace and waits for it; returns its
  /// exit status, or 128 + signal when a signal ended it.
  public func spawnAndWait(_ command: [String]) throws -> Int32 {
    let pid: pid_t = try self.perform {
      var pid = pid_t()
      let argv = command.map { strdup($0) } + [nil]
      defer { argv.forEach { free($0) } }
      let rc = posix_spawnp(&pid, command[0], nil, nil, argv, environ)
      guard rc == 0 else { throw SystemError("start \(command[0])", errno: rc) }
      return pid
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
      guard errno == EINTR else { throw SystemError.current("wait for \(command[0])") }
    }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
  }
}
