import FoundationEssentials
import Glibc
import NIOCore
import WeftProxy

/// Where the sidecar's snapshots come from.
enum SnapshotSource: Sendable {
  /// A JSON file, re-read when its modification time changes.
  case file(String)
  /// The host agent's local API: long polls for the next version.
  case agent(socket: String, workload: String, group: any EventLoopGroup)

  /// The first snapshot; from the agent, retried until it answers (the proxy is not ready before).
  func first() async throws -> ProxySnapshot {
    switch self {
    case .file(let path): return try Self.load(path)
    case .agent:
      var delay = Duration.milliseconds(200)
      while true {
        do { return try await self.fetch(after: nil) } catch {
          print("weft proxy: waiting for the agent: \(error)")
          try await Task.sleep(for: delay)
          delay = min(delay * 2, .seconds(5))
        }
      }
    }
  }

  /// Applies every later snapshot to `table` until cancelled; on errors keeps the last one.
  func follow(table: ServiceTable) async {
    var modified = Self.modified(self.path)
    var delay = Duration.milliseconds(200)
    while !Task.isCancelled {
      do {
        let next: ProxySnapshot
        switch self {
        case .file(let path):
          try await Task.sleep(for: .milliseconds(500))
          guard let now = Self.modified(path), now != modified else { continue }
          modified = now
          next = try Self.load(path)
        case .agent:
          next = try await self.fetch(after: table.version)
        }
        delay = .milliseconds(200)
        guard next.version != table.version else { continue }
        table.apply(next)
        print("weft proxy: snapshot version \(next.version), \(next.services.count) service(s)")
      } catch is CancellationError {
        return
      } catch {
        print("weft proxy: keeping snapshot \(table.version): \(error)")
        try? await Task.sleep(for: delay)
        delay = min(delay * 2, .seconds(5))
      }
    }
  }

  private var path: String {
    if case .file(let path) = self { return path }
    return ""
  }

  /// Takes the workload's credentials from the agent into `tls`; says why when there are none.
  @discardableResult
  func loadIdentity(into tls: MeshTLS) async -> Date? {
    guard case .agent(let socket, let workload, let group) = self else { return nil }
    do {
      let identity: ProxyIdentity = try await Self.get(
        socket: socket, "/v1/proxy/identity", workload: workload, group: group)
      if try tls.update(chainPEM: identity.chain, keyPEM: identity.key, bundlePEM: identity.bundle) {
        print("weft proxy: mutual TLS as \(identity.identity), renewing at \(identity.renewAt)")
      }
      return identity.renewAt
    } catch {
      print("weft proxy: \(tls.isReady ? "keeping the credentials in use" : "no mutual TLS"): \(error)")
      return nil
    }
  }

  /// Renews the credentials when due, and looks for a changed trust bundle every 30 s (with the
  /// agent's 20 s cache, a CA rotation reaches every sidecar within a minute, before the new
  /// CA signs: ``IdentityIssuer/propagation``).
  func renew(_ tls: MeshTLS) async {
    guard case .agent = self else { return }
    var next = Date().addingTimeInterval(30)
    while !Task.isCancelled {
      let wait = max(1, min(next.timeIntervalSinceNow, 30))
      try? await Task.sleep(for: .seconds(wait))
      next = await self.loadIdentity(into: tls) ?? Date().addingTimeInterval(tls.isReady ? 10 : 30)
    }
  }

  /// GETs `path?workload=W` from the agent's socket and decodes the answer.
  private static func get<T: Decodable>(
    socket: String, _ path: String, workload: String, after: Int? = nil, group: any EventLoopGroup
  ) async throws -> T {
    var target = "\(path)?workload=\(AgentClient.encode(workload))"
    if let after { target += "&after=\(after)" }
    let response = try await AgentClient.get(
      socket: socket, target: target, timeout: .seconds(40), group: group)
    guard response.status == .ok else {
      throw SnapshotError("the agent answered \(response.status.code): \(String(buffer: response.body))")
    }
    return try JSONDecoder().decode(T.self, from: Data(response.body.readableBytesView))
  }

  private func fetch(after version: Int?) async throws -> ProxySnapshot {
    guard case .agent(let socket, let workload, let group) = self else { throw CancellationError() }
    return try await Self.get(
      socket: socket, "/v1/proxy/snapshot", workload: workload, after: version, group: group)
  }

  /// The file's modification time (seconds and nanoseconds), nil when it cannot be read.
  private static func modified(_ path: String) -> [Int]? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return [info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
  }

  private static func load(_ path: String) throws -> ProxySnapshot {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw SnapshotError("cannot read \(path)")
    }
    do {
      return try JSONDecoder().decode(ProxySnapshot.self, from: data)
    } catch {
      throw SnapshotError("\(path) is not a proxy snapshot: \(error)")
    }
  }
}

/// Why a snapshot could not be had.
struct SnapshotError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
