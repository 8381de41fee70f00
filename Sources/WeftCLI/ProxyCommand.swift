import ArgumentParser
import AsyncHTTPClient
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import WeftDatapath
import WeftProxy
import WeftWire

/// `weft proxy`: the sidecar, run in a workload's network namespace.
struct ProxyCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "proxy",
    abstract: "Run the sidecar proxy in this network namespace (a workload's).",
    discussion: """
      Binds the outbound (15001) and inbound (15006) listeners and gets its services (version,
      services with vip, ports, balancer, endpoints) from the host agent (--agent SOCKET
      --workload NAME: the agent answers as soon as something changes and the proxy keeps its
      last snapshot while the agent is away) or from a JSON file (--config, re-read when it
      changes), then, unless --no-intercept, installs the nftables table weft_mesh that
      redirects the namespace's TCP to the listeners: only once the proxy is ready, so no
      connection is refused while it starts. SIGTERM or SIGINT removes the table and stops.
      """)

  @Option(name: .long, help: "A snapshot file (JSON) instead of the agent.")
  var config: String?

  @Option(name: .long, help: "The host agent's unix socket, which delivers snapshots.")
  var agent: String?

  @Option(name: .long, help: "This workload's name (with --agent).")
  var workload: String?

  @Option(name: .long, help: "The outbound listener's port.")
  var outboundPort = 15001

  @Option(name: .long, help: "The inbound listener's port.")
  var inboundPort = 15006

  @Option(name: .long, help: "The admin listener's port (/ready, /config, /clusters, /metrics).")
  var adminPort = 15000

  @Option(name: .long, parsing: .upToNextOption, help: "Destination ports whose traffic bypasses the proxy.")
  var excludeOutboundPorts: [Int] = []

  @Option(
    name: .long, parsing: .upToNextOption, help: "Local ports whose inbound traffic bypasses the proxy.")
  var excludeInboundPorts: [Int] = []

  @Flag(name: .long, help: "Do not install the interception rules (for tests that connect to the listeners).")
  var noIntercept = false

  @Option(name: .long, help: "Event loop threads (a sidecar is light: one by default).")
  var eventLoops = 1

  @Option(name: .long, help: "Seconds a stopping proxy lets open requests finish before closing them.")
  var drainSeconds = 5.0

  func run() async throws {
    var rules = InterceptionRules(
      excludedOutboundPorts: self.excludeOutboundPorts, excludedInboundPorts: self.excludeInboundPorts)
    rules.outboundPort = self.outboundPort
    rules.inboundPort = self.inboundPort
    rules.adminPort = self.adminPort
    if let problem = rules.problem { throw ValidationError(problem) }
    guard (1...64).contains(self.eventLoops) else { throw ValidationError("--event-loops must be 1-64") }
    guard (0...600).contains(self.drainSeconds) else {
      throw ValidationError("--drain-seconds must be 0-600")
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: self.eventLoops)
    let source: SnapshotSource
    switch (self.config, self.agent, self.workload) {
    case (let path?, nil, nil): source = .file(path)
    case (nil, let socket?, let workload?): source = .agent(socket: socket, workload: workload)
    default: throw ValidationError("give either --config FILE, or --agent SOCKET with --workload NAME")
    }
    let table = ServiceTable()
    let first: ProxySnapshot
    do { first = try await source.first() } catch { throw fail("\(error)") }
    table.apply(first)
    // Mutual TLS with the other sidecars, from the agent's credentials when its controller has
    // a CA (plaintext otherwise).
    let tls = MeshTLS()
    await source.loadIdentity(into: tls)
    let proxy = try await SidecarProxy.start(
      outboundPort: self.outboundPort, inboundPort: self.inboundPort, table: table,
      source: self.workload ?? ProcessInfo.processInfo.environment["WEFT_WORKLOAD"] ?? "unknown", tls: tls,
      mark: rules.proxyMark, group: group)
    let admin: any Channel
    do { admin = try await AdminServer.start(port: self.adminPort, proxy: proxy, group: group) } catch {
      await proxy.stop()
      throw fail("could not listen on the admin port \(self.adminPort): \(error)")
    }
    if !self.noIntercept {
      do { try KernelDatapath.nft(rules.script) } catch {
        try? await admin.close()
        await proxy.stop()
        throw fail("could not install the interception rules: \(error)")
      }
    }
    print(
      "weft proxy: ready, outbound :\(proxy.outboundPort), inbound :\(proxy.inboundPort), admin :\(self.adminPort), "
        + "\(first.services.count) service(s), snapshot version \(first.version)")
    let stop = Self.signals()
    let updates = Task { await source.follow(table: table) }
    let renewals = Task { await source.renew(tls) }
    while !stop.isDone { try? await Task.sleep(for: .milliseconds(200)) }
    updates.cancel()
    renewals.cancel()
    // Drain with the rules in place (redirected connections need them for their replies), then
    // take them out: new connections go straight to their destinations from then on.
    let started = ContinuousClock.now
    let drained = await proxy.drain(timeout: .milliseconds(Int(self.drainSeconds * 1000)))
    if !self.noIntercept { try? KernelDatapath.nft("delete table ip \(InterceptionRules.table)\n") }
    try? await admin.close()
    let took = ContinuousClock.now - started
    print(
      "weft proxy: stopped; drained \(drained.open) connection(s) in \(Int(took.totalMilliseconds)) ms, "
        + "\(drained.cut) cut at the deadline")
  }

  /// Becomes done on SIGTERM or SIGINT.
  private static func signals() -> StopFlag {
    let flag = StopFlag()
    for sig in [SIGTERM, SIGINT] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler { flag.set() }
      source.resume()
      flag.keep(source)
    }
    return flag
  }
}

/// A flag set once from a signal handler's queue.
final class StopFlag: @unchecked Sendable {
  private let lock = NSLock()
  private var done = false
  private var sources: [any DispatchSourceSignal] = []

  var isDone: Bool { self.lock.withLock { self.done } }
  func set() { self.lock.withLock { self.done = true } }
  func keep(_ source: any DispatchSourceSignal) { self.lock.withLock { self.sources.append(source) } }
}

/// Where the sidecar's snapshots come from.
enum SnapshotSource: Sendable {
  /// A JSON file, re-read when its modification time changes.
  case file(String)
  /// The host agent's local API: long polls for the next version.
  case agent(socket: String, workload: String)

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
    guard case .agent(let socket, let workload) = self else { return nil }
    do {
      let identity: ProxyIdentity = try await Self.get(
        socket: socket, "/v1/proxy/identity", workload: workload)
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
  private static func get<T: Decodable>(socket: String, _ path: String, workload: String, after: Int? = nil)
    async throws -> T
  {
    let encodedSocket = socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socket
    let encodedWorkload = workload.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? workload
    var url = "http+unix://\(encodedSocket)\(path)?workload=\(encodedWorkload)"
    if let after { url += "&after=\(after)" }
    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(40))
    let body = try await response.body.collect(upTo: 16 << 20)
    guard response.status == .ok else {
      throw SnapshotError("the agent answered \(response.status.code): \(String(buffer: body))")
    }
    return try JSONDecoder().decode(T.self, from: body)
  }

  private func fetch(after version: Int?) async throws -> ProxySnapshot {
    guard case .agent(let socket, let workload) = self else { throw CancellationError() }
    return try await Self.get(socket: socket, "/v1/proxy/snapshot", workload: workload, after: version)
  }

  private static func modified(_ path: String) -> Date? {
    (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
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
