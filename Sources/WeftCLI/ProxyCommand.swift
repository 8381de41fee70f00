import ArgumentParser
import Dispatch
import Foundation
import WeftDatapath
import WeftProxy

/// `weft proxy`: the sidecar, run in a workload's network namespace.
struct ProxyCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "proxy",
    abstract: "Run the sidecar proxy in this network namespace (a workload's).",
    discussion: """
      Binds the outbound (15001) and inbound (15006) listeners, loads the services from --config
      (a JSON snapshot: version, services with vip, ports, balancer, endpoints) and re-reads it
      when it changes, then, unless --no-intercept, installs the nftables table weft_mesh that
      redirects the namespace's TCP to the listeners: only once the proxy is ready, so no
      connection is refused while it starts. SIGTERM or SIGINT removes the table and stops.
      """)

  @Option(name: .long, help: "The snapshot file (JSON).")
  var config: String

  @Option(name: .long, help: "The outbound listener's port.")
  var outboundPort = 15001

  @Option(name: .long, help: "The inbound listener's port.")
  var inboundPort = 15006

  @Option(name: .long, parsing: .upToNextOption, help: "Destination ports whose traffic bypasses the proxy.")
  var excludeOutboundPorts: [Int] = []

  @Option(
    name: .long, parsing: .upToNextOption, help: "Local ports whose inbound traffic bypasses the proxy.")
  var excludeInboundPorts: [Int] = []

  @Flag(name: .long, help: "Do not install the interception rules (for tests that connect to the listeners).")
  var noIntercept = false

  func run() async throws {
    var rules = InterceptionRules(
      excludedOutboundPorts: self.excludeOutboundPorts, excludedInboundPorts: self.excludeInboundPorts)
    rules.outboundPort = self.outboundPort
    rules.inboundPort = self.inboundPort
    if let problem = rules.problem { throw ValidationError(problem) }
    let table = ServiceTable()
    var loaded = try Self.load(self.config)
    table.apply(loaded.snapshot)
    let proxy = try await SidecarProxy.start(
      outboundPort: self.outboundPort, inboundPort: self.inboundPort, table: table, mark: rules.proxyMark)
    if !self.noIntercept {
      do { try KernelDatapath.nft(rules.script) } catch {
        await proxy.stop()
        throw fail("could not install the interception rules: \(error)")
      }
    }
    print(
      "weft proxy: ready, outbound :\(proxy.outboundPort), inbound :\(proxy.inboundPort), "
        + "\(loaded.snapshot.services.count) service(s), snapshot version \(loaded.snapshot.version)")
    let stop = Self.signals()
    while !stop.isDone {
      try? await Task.sleep(for: .milliseconds(500))
      // A changed snapshot applies to new connections; open ones go on where they are.
      guard let modified = Self.modified(self.config), modified != loaded.modified else { continue }
      do {
        loaded = try Self.load(self.config)
        table.apply(loaded.snapshot)
        print(
          "weft proxy: snapshot version \(loaded.snapshot.version), \(loaded.snapshot.services.count) service(s)"
        )
      } catch {
        print("weft proxy: keeping snapshot \(table.version): \(error)")
        loaded.modified = modified
      }
    }
    if !self.noIntercept { try? KernelDatapath.nft("delete table ip \(InterceptionRules.table)\n") }
    await proxy.stop()
    print("weft proxy: stopped")
  }

  private static func modified(_ path: String) -> Date? {
    (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
  }

  private static func load(_ path: String) throws -> (snapshot: ProxySnapshot, modified: Date?) {
    let modified = Self.modified(path)
    guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot read \(path)") }
    do {
      return (try JSONDecoder().decode(ProxySnapshot.self, from: data), modified)
    } catch {
      throw fail("\(path) is not a proxy snapshot: \(error)")
    }
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
