import Foundation
import Synchronization
import Testing
import WeftClient
import WeftControl
import WeftLinux
import WeftModel

#if canImport(Glibc)
  import Glibc
#endif

/// Starts `weft controller` on a unix socket in `dir`; returns its pid and a client.
func startController(_ dir: String) async throws -> (Int32, ControlClient) {
  let ready = "\(dir)/ready"
  try? FileManager.default.removeItem(atPath: ready)
  let pid = try Spawn.start(
    [weftBinary, "controller", "--listen", "unix:\(dir)/c.sock", "--data", dir, "--ready-file", ready],
    logPath: "\(dir)/controller.log", environment: ["WEFT_TOKEN": "crash-test"])
  for _ in 0..<300 where !FileManager.default.fileExists(atPath: ready) {
    try await Task.sleep(for: .milliseconds(100))
  }
  let url = try String(contentsOfFile: ready, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
  let ca = try String(contentsOfFile: "\(dir)/control-ca/ca.pem", encoding: .utf8)
  return (pid, try ControlClient(baseURL: url, credentials: ClientCredentials(token: "crash-test", ca: ca)))
}

/// A count shared between tasks.
final class Counter: Sendable {
  let value = Mutex(0)
}

@Suite("controller killed with SIGKILL during a burst of applies", .serialized)
struct ControllerCrashTests {
  @Test func everyAcknowledgedChangeSurvivesAndNoneIsHalfWritten() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-crash-\(getpid())").path
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (pid, client) = try await startController(dir)
    let done = Counter()
    // Eight writers apply networks one by one; the controller dies under them.
    let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
      for writer in 0..<8 {
        group.addTask {
          var mine: [String] = []
          for i in 0..<60 {
            let name = "n\(writer)-\(i)"
            let spec = NetworkSpec(cidr: "100.\(64 + writer).\(i).0/24", hostPrefixLength: 28)
            do {
              _ = try await client.apply([try Resource(kind: .network, name: name, spec: spec)])
              mine.append(name)
              done.value.withLock { $0 += 1 }
            } catch {
              return mine  // the controller is gone
            }
          }
          return mine
        }
      }
      // Kill it once the burst is well under way, however slow this machine is today.
      for _ in 0..<600 where done.value.withLock({ $0 }) < 40 {
        try await Task.sleep(for: .milliseconds(50))
      }
      kill(pid, SIGKILL)
      _ = try Spawn.wait(pid, command: "weft controller")
      var all: [String] = []
      for try await names in group { all += names }
      return all
    }
    #expect(acknowledged.count > 0)
    #expect(acknowledged.count < 480, "the kill came too late to test anything")

    let (pid2, client2) = try await startController(dir)
    defer { Spawn.stop(pid2) }
    // On a loaded machine the first request may come early; a controller that died says why.
    var listed: [Resource]?
    for _ in 0..<50 where listed == nil {
      listed = try? await client2.list(.network).items
      if listed == nil { try await Task.sleep(for: .milliseconds(200)) }
    }
    let log = (try? String(contentsOfFile: "\(dir)/controller.log", encoding: .utf8)) ?? "(no log)"
    let stored = try #require(
      listed,
      "the restarted controller (alive: \(Spawn.isAlive(pid2))) did not answer; its log:\n\(log.suffix(3000))"
    )
    let names = Set(stored.map(\.metadata.name))
    #expect(names.isSuperset(of: acknowledged), "missing: \(Set(acknowledged).subtracting(names).sorted())")
    // Nothing half-written: every stored network is whole and has its VNI.
    for n in stored {
      #expect(try n.decodeSpec(NetworkSpec.self).prefix != nil)
      #expect(try (n.decodeStatus(NetworkStatus.self))?.vni ?? 0 > 0, "\(n.metadata.name)")
    }
    #expect(Set(stored.compactMap { try? $0.decodeStatus(NetworkStatus.self)?.vni }).count == stored.count)
  }
}
