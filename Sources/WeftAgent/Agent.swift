import Foundation
import WeftClient
import WeftControl
import WeftDatapath
import WeftLinux
import WeftModel
import WeftProxy
import WeftWire

/// The host agent: registers its host, follows the controller's resources through a watch, and
/// keeps the datapath reconciled with them on every change and on a periodic resync.
///
/// When the controller is away the datapath keeps its last state (nothing is torn down) and the
/// agent reconnects with exponential backoff; when it comes back the watch resumes from the last
/// revision seen, or lists again when that history is gone.
public actor Agent {
  /// Settings of an agent.
  public struct Configuration: Sendable {
    /// The host's name.
    public var name: String
    /// The underlay address.
    public var underlay: IPAddress
    /// The underlay interface.
    public var underlayDevice: String
    /// The underlay interface's MTU.
    public var underlayMTU: UInt32
    /// `kernel` (or `userspace`, later).
    public var datapath: String
    /// How often to reconcile without an event, to repair drift.
    public var resync: Duration
    /// How often to report alive.
    public var heartbeat: Duration

    /// Creates a configuration.
    public init(
      name: String, underlay: IPAddress, underlayDevice: String, underlayMTU: UInt32,
      datapath: String = "kernel",
      resync: Duration = .seconds(30), heartbeat: Duration = .seconds(10)
    ) {
      self.name = name
      self.underlay = underlay
      self.underlayDevice = underlayDevice
      self.underlayMTU = underlayMTU
      self.datapath = datapath
      self.resync = resync
      self.heartbeat = heartbeat
    }
  }

  private let client: ControlClient
  private let config: Configuration
  /// The certificates of this host's meshed workloads.
  public let certificates: WorkloadCertificates
  private let datapath: any Datapath
  private let log: @Sendable (String) -> Void
  private var networks: [String: Resource] = [:]
  private var hosts: [String: Resource] = [:]
  /// Services and workloads, for the sidecars' snapshots.
  private var services: [String: Resource] = [:]
  private var routes: [String: Resource] = [:]
  private var policies: [String: Resource] = [:]
  private var workloads: [String: Resource] = [:]
  /// Increases whenever a service or workload changes.
  private var meshVersion = 1
  /// Health last reported per `workload/service`, and when each is next due.
  private var reportedHealth: [String: Bool] = [:]
  private var nextCheck: [String: ContinuousClock.Instant] = [:]
  private var revision: Int64 = 0
  private var lastApplied: DesiredState?

  /// Creates an agent.
  public init(
    client: ControlClient, configuration: Configuration, datapath: any Datapath,
    log: @escaping @Sendable (String) -> Void = { print($0) }
  ) {
    self.client = client
    self.config = configuration
    self.certificates = WorkloadCertificates(client: client)
    self.datapath = datapath
    self.log = log
  }

  /// Runs until cancelled: join, then watch and reconcile, heartbeating and resyncing alongside.
  public func run() async throws {
    try await self.join()
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await self.heartbeatLoop() }
      group.addTask { try await self.resyncLoop() }
      group.addTask { try await self.watchLoop() }
      group.addTask { try await self.healthLoop() }
      try await group.next()
      group.cancelAll()
    }
  }

  /// Registers the host, retrying with backoff until the controller answers.
  func join() async throws {
    let spec = HostSpec(
      underlay: self.config.underlay.description, datapath: self.config.datapath,
      underlayMTU: Int(self.config.underlayMTU))
    var backoff = Backoff()
    while true {
      do {
        let host = try await self.client.join(host: self.config.name, spec: spec)
        let subnets = ((try? host.decodeStatus(HostStatus.self)) ?? nil)?.networks.map {
          "\($0.key)=\($0.value.subnet)"
        }
        self.log(
          "joined as host \(self.config.name) (\(self.config.underlay)); leases: \(subnets?.sorted().joined(separator: " ") ?? "none")"
        )
        return
      } catch let e as ControlError where e.status == 401 || e.status == 400 {
        throw e  // a wrong token or bad spec will not get better by retrying
      } catch {
        self.log("join failed: \(error); retrying in \(backoff.current)")
        try await backoff.wait()
      }
    }
  }

  private func watchLoop() async throws {
    var backoff = Backoff()
    while !Task.isCancelled {
      do {
        if self.revision == 0 { try await self.relist() }
        let stream = try await self.client.watch(after: self.revision)
        backoff.reset()
        for try await message in stream {
          self.revision = max(self.revision, message.revision)
          guard let r = message.resource else { continue }
          let removed = message.type == "delete"
          switch r.kind {
          case .network: self.networks[r.metadata.name] = removed ? nil : r
          case .host:
            self.hosts[r.metadata.name] = removed ? nil : r
            if removed && r.metadata.name == self.config.name {
              self.log("this host was removed by the controller; joining again")
              try await self.join()
            }
          case .workload:
            self.workloads[r.metadata.name] = removed ? nil : r
            self.meshVersion += 1
            continue
          case .service:
            self.services[r.metadata.name] = removed ? nil : r
            self.meshVersion += 1
            continue
          case .route:
            self.routes[r.metadata.name] = removed ? nil : r
            self.meshVersion += 1
            continue
          case .accessPolicy:
            self.policies[r.metadata.name] = removed ? nil : r
            self.meshVersion += 1
            continue
          }
          self.reconcile(reason: "\(message.type) \(r.key)")
        }
      } catch let e as ControlError where e.status == 410 {
        self.log("watch history compacted; listing again")
        self.revision = 0
      } catch {
        if Task.isCancelled { return }
        self.log(
          "controller unreachable (\(error)); keeping the datapath as it is, retrying in \(backoff.current)")
        try await backoff.wait()
      }
    }
  }

  private func relist() async throws {
    let nets = try await self.client.list(.network)
    let hosts = try await self.client.list(.host)
    let services = try await self.client.list(.service)
    let workloads = try await self.client.list(.workload)
    let routes = try await self.client.list(.route)
    let policies = try await self.client.list(.accessPolicy)
    self.networks = Dictionary(uniqueKeysWithValues: nets.items.map { ($0.metadata.name, $0) })
    self.hosts = Dictionary(uniqueKeysWithValues: hosts.items.map { ($0.metadata.name, $0) })
    self.services = Dictionary(uniqueKeysWithValues: services.items.map { ($0.metadata.name, $0) })
    self.workloads = Dictionary(uniqueKeysWithValues: workloads.items.map { ($0.metadata.name, $0) })
    self.routes = Dictionary(uniqueKeysWithValues: routes.items.map { ($0.metadata.name, $0) })
    self.policies = Dictionary(uniqueKeysWithValues: policies.items.map { ($0.metadata.name, $0) })
    self.meshVersion += 1
    self.revision = [nets, hosts, services, workloads, routes, policies].map { $0.revision ?? 0 }.min() ?? 0
    self.reconcile(reason: "list at revision \(self.revision)")
  }

  private func heartbeatLoop() async throws {
    while !Task.isCancelled {
      try await Task.sleep(for: self.config.heartbeat)
      do {
        try await self.client.heartbeat(host: self.config.name)
      } catch let e as ControlError where e.status == 404 {
        try? await self.join()
      } catch {
        // The watch loop reports an unreachable controller; heartbeats just try again.
      }
    }
  }

  private func resyncLoop() async throws {
    while !Task.isCancelled {
      try await Task.sleep(for: self.config.resync)
      if !self.networks.isEmpty || self.lastApplied != nil { self.reconcile(reason: "resync", quiet: true) }
    }
  }

  /// The sidecar snapshot for `workload`: the services of its network with their endpoints. With
  /// `after`, waits (up to `wait`) until there is a newer version than that; a sidecar polls with
  /// its current version and gets an answer as soon as something changed.
  public func proxySnapshot(for workload: String, after: Int? = nil, wait: Duration = .seconds(25))
    async throws
    -> ProxySnapshot
  {
    let deadline = ContinuousClock.now + wait
    while let after, self.meshVersion <= after, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(100))
    }
    guard let network = (try? self.workloads[workload]?.decodeSpec(WorkloadSpec.self))?.network else {
      throw ControlError.notFound("workload/\(workload) is not known to this agent")
    }
    let services = self.services.values.filter { (try? $0.decodeSpec(ServiceSpec.self))?.network == network }
    return ProxySnapshot.build(
      version: self.meshVersion,
      from: services + Array(self.workloads.values) + Array(self.routes.values) + Array(self.policies.values),
      trustDomain: await self.certificates.trustDomain())
  }

  /// Whether `workload` runs on this agent's host (only those get credentials here).
  public func isLocal(_ workload: String) -> Bool {
    (try? self.workloads[workload]?.decodeSpec(WorkloadSpec.self))?.host == self.config.name
  }

  /// Checks this host's endpoints of every service with a health check when each is due, and
  /// reports changes to the controller (which every agent then sees through its watch).
  private func healthLoop() async throws {
    while !Task.isCancelled {
      try await Task.sleep(for: .milliseconds(250))
      await self.runDueHealthChecks()
    }
  }

  private struct DueCheck: Sendable {
    var key: String
    var workload: String
    var service: String
    var address: String
    var port: Int
    var check: ServiceHealthCheck
  }

  private func runDueHealthChecks() async {
    let now = ContinuousClock.now
    var due: [DueCheck] = []
    var current: Set<String> = []
    defer {
      // Workloads and services that are gone leave no bookkeeping behind.
      self.nextCheck = self.nextCheck.filter { current.contains($0.key) }
      self.reportedHealth = self.reportedHealth.filter { current.contains($0.key) }
    }
    for (name, service) in self.services {
      guard let spec = try? service.decodeSpec(ServiceSpec.self), let check = spec.healthCheck,
        let port = spec.ports.first?.effectiveTargetPort
      else { continue }
      for endpoint in ServiceEndpoint.of(spec, named: name, in: Array(self.workloads.values))
      where endpoint.host == self.config.name {
        let key = "\(endpoint.workload)/\(name)"
        current.insert(key)
        if let next = self.nextCheck[key], next > now { continue }
        self.nextCheck[key] = now + check.interval
        due.append(
          DueCheck(
            key: key, workload: endpoint.workload, service: name, address: endpoint.address, port: port,
            check: check))
      }
    }
    guard !due.isEmpty else { return }
    let results = await withTaskGroup(of: (DueCheck, Bool).self) { group in
      for item in due {
        group.addTask {
          (item, await HealthProbe.check(address: item.address, port: item.port, check: item.check))
        }
      }
      var all: [(DueCheck, Bool)] = []
      for await result in group { all.append(result) }
      return all
    }
    for (item, healthy) in results where self.reportedHealth[item.key] != healthy {
      do {
        try await self.client.reportHealth(workload: item.workload, service: item.service, healthy: healthy)
        self.reportedHealth[item.key] = healthy
        self.log(
          "health: \(item.workload) for service \(item.service) is \(healthy ? "healthy" : "unhealthy")")
      } catch {
        self.nextCheck[item.key] = now  // report again at the next round
      }
    }
  }

  /// What the DNS resolver answers for `name`: nil when it is not a `.weft` name (forward it),
  /// `.some(nil)` when it is one that does not exist.
  public func resolve(_ name: String) -> [IPv4Address]?? {
    AgentDNS.resolve(name, services: Array(self.services.values), workloads: Array(self.workloads.values))
  }

  /// True once the agent has listed the controller's resources at least once.
  public var isReady: Bool { self.revision > 0 }

  /// The state this agent would apply now.
  public func desiredState() -> DesiredState {
    DesiredStateBuilder.build(
      host: self.config.name, underlay: self.config.underlay, underlayDevice: self.config.underlayDevice,
      underlayMTU: self.config.underlayMTU, networks: Array(self.networks.values),
      hosts: Array(self.hosts.values))
  }

  private func reconcile(reason: String, quiet: Bool = false) {
    let desired = self.desiredState()
    do {
      let report = try self.datapath.reconcile(desired)
      self.lastApplied = desired
      if !report.isEmpty {
        self.log(
          "reconciled (\(reason)): \(report.changes.count) change(s)\n  "
            + report.changes.joined(separator: "\n  "))
      } else if !quiet {
        self.log("reconciled (\(reason)): up to date")
      }
    } catch {
      self.log("reconcile (\(reason)) failed: \(error); will retry at the next event or resync")
    }
  }
}

/// Exponential backoff with jitter: 0.5 s doubling to 30 s.
struct Backoff {
  var current: Duration = .milliseconds(500)

  mutating func wait() async throws {
    let jitter = Double.random(in: 0.8...1.2)
    try await Task.sleep(for: self.current * jitter)
    self.current = min(self.current * 2, .seconds(30))
  }

  mutating func reset() { self.current = .milliseconds(500) }
}
