import ArgumentParser
import Dispatch
import Glibc
import NIOCore
import NIOPosix
import Synchronization
import WeftLinux
import WeftProxy

/// `weft proxy` (and the `weft-proxy` executable): the sidecar, run in a workload's network
/// namespace.
public struct ProxyCommand: AsyncParsableCommand {
  /// The command's name and help.
  public static let configuration = CommandConfiguration(
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

  /// A command with every option at its default (ArgumentParser fills them in).
  public init() {}

  /// Runs the sidecar until SIGTERM or SIGINT, then drains and removes the interception rules.
  public func run() async throws {
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
    case (nil, let socket?, let workload?): source = .agent(socket: socket, workload: workload, group: group)
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
      source: self.workload ?? getenv("WEFT_WORKLOAD").map { String(cString: $0) } ?? "unknown", tls: tls,
      mark: rules.proxyMark, group: group)
    let admin: any Channel
    do { admin = try await AdminServer.start(port: self.adminPort, proxy: proxy, group: group) } catch {
      await proxy.stop()
      throw fail("could not listen on the admin port \(self.adminPort): \(error)")
    }
    if !self.noIntercept {
      do { try NFTables.apply(rules.script) } catch {
        try? await admin.close()
        await proxy.stop()
        throw fail("could not install the interception rules: \(error)")
      }
    }
    print(
      "weft proxy: ready, outbound :\(proxy.outboundPort), inbound :\(proxy.inboundPort), admin :\(self.adminPort), "
        + "\(first.services.count) service(s), snapshot version \(first.version)")
    let (stop, signalSources) = Self.signals()
    let updates = Task { await source.follow(table: table) }
    let renewals = Task { await source.renew(tls) }
    while !stop.isDone { try? await Task.sleep(for: .milliseconds(200)) }
    updates.cancel()
    renewals.cancel()
    // Drain with the rules in place (redirected connections need them for their replies), then
    // take them out: new connections go straight to their destinations from then on.
    let started = ContinuousClock.now
    let drained = await proxy.drain(timeout: .milliseconds(Int(self.drainSeconds * 1000)))
    if !self.noIntercept { try? NFTables.apply("delete table ip \(InterceptionRules.table)\n") }
    try? await admin.close()
    withExtendedLifetime(signalSources) {}
    let took = ContinuousClock.now - started
    print(
      "weft proxy: stopped; drained \(drained.open) connection(s) in \(Int(took.totalMilliseconds)) ms, "
        + "\(drained.cut) cut at the deadline")
  }

  /// A flag that becomes set on SIGTERM or SIGINT, and the dispatch sources that set it (to be
  /// kept alive while it is watched).
  private static func signals() -> (StopFlag, [any DispatchSourceSignal]) {
    let flag = StopFlag()
    var sources: [any DispatchSourceSignal] = []
    for sig in [SIGTERM, SIGINT] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler { flag.set() }
      source.resume()
      sources.append(source)
    }
    return (flag, sources)
  }

  /// An error naming what failed, printed as `weft proxy: ...`, with exit status 1.
  private func fail(_ message: String) -> ExitCode {
    let line = Array("weft proxy: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
    return ExitCode(1)
  }
}

/// A flag set once from a signal handler's queue.
final class StopFlag: Sendable {
  private let done = Atomic<Bool>(false)

  var isDone: Bool { self.done.load(ordering: .acquiring) }
  func set() { self.done.store(true, ordering: .releasing) }
}
