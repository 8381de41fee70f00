import Foundation
import WeftLinux

/// Starting and stopping a workload's sidecar, `weft proxy --agent SOCKET --workload NAME`, in the
/// workload's network namespace: used by the lab (`weft lab workload add --mesh`) and by the agent
/// for workloads the CNI plugin attaches with `mesh: true`.
public enum Sidecar {
  /// A sidecar that did not come up.
  public struct StartError: Error, CustomStringConvertible {
    /// What happened.
    public var description: String
  }

  /// Starts the sidecar detached (its own session, output appended to `log`) and waits up to
  /// `within` until it says it is ready (its interception rules are in). Returns its pid.
  public static func start(
    executable: String, agentSocket: String, workload: String, namespace: NetworkNamespace, log: String,
    drainSeconds: Int, within: Duration = .seconds(20)
  ) async throws -> Int32 {
    let pid = try namespace.spawnDetached(
      [
        executable, "proxy", "--agent", agentSocket, "--workload", workload, "--drain-seconds",
        String(drainSeconds),
      ], logPath: log)
    let deadline = ContinuousClock.now + within
    while true {
      guard Spawn.isAlive(pid) else {
        throw StartError(description: "the sidecar of \(workload) exited; see \(log)")
      }
      if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("weft proxy: ready") {
        return pid
      }
      guard ContinuousClock.now < deadline else {
        Spawn.stop(pid)
        throw StartError(description: "the sidecar of \(workload) was not ready within \(within); see \(log)")
      }
      try await Task.sleep(for: .milliseconds(50))
    }
  }

  /// True when `pid` is a sidecar of `workload` (its command line says so): a recorded pid may
  /// have been reused by an unrelated process after a reboot.
  public static func isSidecar(_ pid: Int32, of workload: String) -> Bool {
    guard pid > 0, let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else {
      return false
    }
    let args = String(decoding: cmdline, as: UTF8.self).split(separator: "\0").map(String.init)
    guard let index = args.firstIndex(of: "--workload"), index + 1 < args.count else { return false }
    // `weft proxy ...`, or `weft-proxy [proxy] ...` (what `weft proxy` becomes).
    let isProxy = args.contains("proxy") || args.first?.hasSuffix("/weft-proxy") == true
    return isProxy && args[index + 1] == workload
  }

  /// The running executable's path, for starting sidecars of the same build.
  public static var currentExecutable: String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
  }
}

/// The sidecars an agent runs for CNI workloads, one pid file each under `directory`, so that
/// a restarted agent still finds and stops them.
public struct SidecarRegistry: Sendable {
  /// Where pid files and logs go.
  public let directory: String
  /// The agent's socket the sidecars read snapshots from.
  public let agentSocket: String
  /// The weft executable.
  public let executable: String
  /// How long a stopping sidecar drains.
  public let drainSeconds: Int

  /// Creates a registry.
  public init(
    directory: String, agentSocket: String, executable: String = Sidecar.currentExecutable,
    drainSeconds: Int = 5
  ) {
    self.directory = directory
    self.agentSocket = agentSocket
    self.executable = executable
    self.drainSeconds = drainSeconds
  }

  /// Starts `workload`'s sidecar in the namespace at `netns` and records its pid.
  public func start(workload: String, netns: String) async throws -> Int32 {
    try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    let pid = try await Sidecar.start(
      executable: self.executable, agentSocket: self.agentSocket, workload: workload,
      namespace: NetworkNamespace(path: netns), log: "\(self.directory)/\(workload).log",
      drainSeconds: self.drainSeconds)
    try String(pid).write(toFile: self.pidFile(workload), atomically: true, encoding: .utf8)
    return pid
  }

  /// Stops `workload`'s sidecar if it runs (it drains first) and forgets it; returns its pid.
  @discardableResult
  public func stop(workload: String) -> Int32? {
    let file = self.pidFile(workload)
    defer { try? FileManager.default.removeItem(atPath: file) }
    guard let text = try? String(contentsOfFile: file, encoding: .utf8), let pid = Int32(text),
      Sidecar.isSidecar(pid, of: workload)
    else { return nil }
    Spawn.stop(pid, grace: .seconds(self.drainSeconds + 2))
    return pid
  }

  /// The recorded pid of `workload`'s sidecar, if it is still running.
  public func pid(of workload: String) -> Int32? {
    guard let text = try? String(contentsOfFile: self.pidFile(workload), encoding: .utf8),
      let pid = Int32(text),
      Sidecar.isSidecar(pid, of: workload)
    else { return nil }
    return pid
  }

  private func pidFile(_ workload: String) -> String { "\(self.directory)/\(workload).pid" }
}
