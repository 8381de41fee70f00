import Foundation
import WeftModel
import WeftStore
import WeftWire

/// The controller's logic, apart from HTTP: applies resources after validating them against the
/// store, allocates VNIs and host subnet leases, and expires hosts that stop reporting.
///
/// Writes go through this actor one at a time, and each is a compare-and-put, so the store stays
/// consistent even when a second writer (another controller, later) races it.
public actor Controller {
  /// The store.
  public let store: any Store
  /// A host without a heartbeat for this long is `Lost`.
  public let lostAfter: Duration
  /// A host without a heartbeat for this long loses its leases (and its Host resource).
  public let leaseTTL: Duration
  /// The CA that signs workload certificates (nil: none, signing requests are refused).
  public internal(set) var issuer: IdentityIssuer?

  /// Writes go through this one at a time; see ``serialized(_:)``.
  private let writes = AsyncLock()

  /// Creates a controller over a store.
  public init(
    store: any Store, lostAfter: Duration = .seconds(30), leaseTTL: Duration = .seconds(3600),
    issuer: IdentityIssuer? = nil
  ) {
    self.store = store
    self.issuer = issuer
    self.lostAfter = lostAfter
    self.leaseTTL = leaseTTL
  }

  /// Validates every resource (on its own, against the store and against each other) and only
  /// then writes them. A bad document leaves the store unchanged. Status fields from the input
  /// are ignored: status belongs to the controller and agents. `caller` must be allowed to write
  /// every one of them (``Principal/requireWrite(_:existing:)``), checked against the store
  /// inside the same serialized write.
  public func apply(_ resources: [Resource], as caller: Principal = .admin("internal")) async throws
    -> [Resource]
  {
    try await self.serialized { try await self.applyUnserialized(resources, as: caller) }
  }

  private func applyUnserialized(_ resources: [Resource], as caller: Principal) async throws -> [Resource] {
    var (existing, _) = try await self.store.list(nil)
    var planned: [Resource] = []
    for var r in resources {
      try Validation.validate(r)
      guard r.kind != .host else {
        throw ControlError.invalid("\(r.key): hosts are registered by their agents (weft agent), not applied")
      }
      try caller.requireWrite(r, existing: existing.first { $0.key == r.key })
      r.status = existing.first { $0.key == r.key }?.status
      try Validation.validate(r, against: existing)
      if r.kind == .network { r = try self.withVNI(r, existing: existing) }
      if r.kind == .service { r = try self.withVIP(r, existing: existing) }
      existing.removeAll { $0.key == r.key }
      existing.append(r)
      planned.append(r)
    }
    var stored: [Resource] = []
    for r in planned {
      stored.append(try await self.putKeepingStatus(r))
    }
    return stored
  }

  /// Deletes a resource. Deleting a network or host also releases the leases that pointed at it.
  /// `caller` must be allowed to write it.
  public func delete(_ key: ResourceKey, as caller: Principal = .admin("internal")) async throws -> Resource {
    try await self.serialized {
      if case .admin = caller {
      } else if let existing = try await self.store.get(key) {
        try caller.requireWrite(existing, existing: existing)
      } else {
        try caller.requireAdmin("delete \(key)")
      }
      return try await self.deleteUnserialized(key)
    }
  }

  private func deleteUnserialized(_ key: ResourceKey) async throws -> Resource {
    let gone = try await self.store.delete(key, if: .none)
    if key.kind == .host { try await self.releaseLeases(of: key.name) }
    if key.kind == .network {
      // Workloads and services of a deleted network go with it.
      for w in try await self.store.list(.workload).resources
      where (try? w.decodeSpec(WorkloadSpec.self))?.network == key.name {
        _ = try? await self.store.delete(w.key, if: .none)
      }
      for s in try await self.store.list(.service).resources
      where (try? s.decodeSpec(ServiceSpec.self))?.network == key.name {
        _ = try? await self.store.delete(s.key, if: .none)
        try await self.deleteRoutes(of: s.metadata.name)
      }
    }
    if key.kind == .service { try await self.deleteRoutes(of: key.name) }
    return gone
  }

  /// A service's route goes with it.
  private func deleteRoutes(of service: String) async throws {
    for r in try await self.store.list(.route).resources
    where (try? r.decodeSpec(RouteSpec.self))?.service == service {
      _ = try? await self.store.delete(r.key, if: .none)
    }
  }

  /// Registers (or re-registers) a host and gives it a subnet lease on every network. A host
  /// that joins again keeps its leases.
  public func join(host name: String, spec: HostSpec) async throws -> Resource {
    try await self.serialized { try await self.joinUnserialized(host: name, spec: spec) }
  }

  private func joinUnserialized(host name: String, spec: HostSpec) async throws -> Resource {
    var host = try Resource(kind: .host, name: name, spec: spec)
    try Validation.validate(host)
    let previous = try await self.store.get(host.key)
    var status = (try previous?.decodeStatus(HostStatus.self)) ?? HostStatus()
    status.heartbeat = Date().timeIntervalSince1970
    status.phase = "Ready"
    host.status = try JSONValue(encoding: status)
    host.metadata.labels = previous?.metadata.labels
    _ = try await self.store.put(host, if: previous.map { .revision($0.metadata.revision ?? 0) } ?? .absent)
    try await self.allocateLeases()
    return try await self.store.get(host.key) ?? host
  }

  /// Records a heartbeat from a host's agent.
  public func heartbeat(host name: String) async throws -> Resource {
    try await self.serialized { try await self.heartbeatUnserialized(host: name) }
  }

  private func heartbeatUnserialized(host name: String) async throws -> Resource {
    try await self.updateStatus(ResourceKey(kind: .host, name: name), as: HostStatus.self) { s in
      s.heartbeat = Date().timeIntervalSince1970
      s.phase = "Ready"
    }
  }

  /// Marks hosts without recent heartbeats `Lost`, and removes those past the lease TTL, releasing
  /// their leases. Returns the names of removed hosts.
  @discardableResult
  public func expireHosts(now: Date = Date()) async throws -> [String] {
    try await self.serialized { try await self.expireHostsUnserialized(now: now) }
  }

  private func expireHostsUnserialized(now: Date = Date()) async throws -> [String] {
    var removed: [String] = []
    for host in try await self.store.list(.host).resources {
      guard let status = try host.decodeStatus(HostStatus.self), let beat = status.heartbeat else { continue }
      let silent = now.timeIntervalSince1970 - beat
      if silent > Double(self.leaseTTL.components.seconds) {
        _ = try await self.deleteUnserialized(host.key)
        removed.append(host.metadata.name)
      } else if silent > Double(self.lostAfter.components.seconds), status.phase != "Lost" {
        _ = try? await self.updateStatus(host.key, as: HostStatus.self) { $0.phase = "Lost" }
      }
    }
    return removed
  }

  /// Runs one write operation at a time. The actor alone is not enough: it is reentrant at every
  /// `await`, and two applies interleaving between reading the store and writing it would hand
  /// out one VNI or one subnet twice.
  private func serialized<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
    try await self.writes.run(body)
  }

  /// Gives every registered host a lease on every network that lacks one.
  func allocateLeases() async throws {
    let hosts = try await self.store.list(.host).resources
    for network in try await self.store.list(.network).resources {
      guard let spec = try? network.decodeSpec(NetworkSpec.self), let range = spec.prefix else { continue }
      var status = (try network.decodeStatus(NetworkStatus.self)) ?? NetworkStatus(vni: spec.vni ?? 0)
      var changed = false
      for host in hosts where status.leases[host.metadata.name] == nil {
        let taken = Set(status.leases.values.compactMap { IPPrefix($0) })
        guard
          let lease = Allocators.subnet(in: range, hostLength: spec.effectiveHostPrefixLength, taken: taken)
        else {
          throw ControlError(
            status: 409, code: "conflict",
            message:
              "Network/\(network.metadata.name): no free /\(spec.effectiveHostPrefixLength) left in \(spec.cidr) for host \(host.metadata.name)"
          )
        }
        status.leases[host.metadata.name] = lease.description
        changed = true
      }
      if changed {
        var updated = network
        updated.status = try JSONValue(encoding: status)
        _ = try await self.store.put(updated, if: .revision(network.metadata.revision ?? 0))
      }
      // Mirror each host's lease and VTEP MAC into its own status.
      for host in hosts {
        guard let subnet = status.leases[host.metadata.name].flatMap({ IPPrefix($0) }) else { continue }
        let entry = HostNetwork(
          subnet: subnet.description, vtepMAC: Allocators.vtepMAC(for: subnet).description)
        let current = (try? host.decodeStatus(HostStatus.self)) ?? nil
        if current?.networks[network.metadata.name] != entry {
          _ = try await self.updateStatus(host.key, as: HostStatus.self) {
            $0.networks[network.metadata.name] = entry
          }
        }
      }
    }
  }

  private func releaseLeases(of host: String) async throws {
    for network in try await self.store.list(.network).resources {
      guard var status = try network.decodeStatus(NetworkStatus.self), status.leases[host] != nil else {
        continue
      }
      status.leases[host] = nil
      var updated = network
      updated.status = try JSONValue(encoding: status)
      _ = try await self.store.put(updated, if: .revision(network.metadata.revision ?? 0))
    }
    for w in try await self.store.list(.workload).resources
    where (try? w.decodeSpec(WorkloadSpec.self))?.host == host {
      _ = try? await self.store.delete(w.key, if: .none)
    }
  }

  /// Gives a network its VNI in status: the spec's, the one it had, or the lowest free one.
  private func withVNI(_ r: Resource, existing: [Resource]) throws -> Resource {
    let spec = try r.decodeSpec(NetworkSpec.self)
    var status = (try r.decodeStatus(NetworkStatus.self)) ?? NetworkStatus(vni: 0)
    if let vni = spec.vni {
      status.vni = vni
    } else if status.vni == 0 {
      let taken = Set(
        existing.filter { $0.kind == .network && $0.key != r.key }.compactMap { n -> Int? in
          (try? n.decodeSpec(NetworkSpec.self))?.vni ?? (try? n.decodeStatus(NetworkStatus.self))??.vni
        })
      guard let vni = Allocators.vni(taken: taken) else {
        throw ControlError.invalid("\(r.key): no free VNI")
      }
      status.vni = vni
    }
    var out = r
    out.status = try JSONValue(encoding: status)
    return out
  }

  /// Gives a service its virtual IP in status: the spec's, the one it had, or the lowest free one.
  private func withVIP(_ r: Resource, existing: [Resource]) throws -> Resource {
    let spec = try r.decodeSpec(ServiceSpec.self)
    let previous = try r.decodeStatus(ServiceStatus.self)?.vip
    var vip = spec.vip ?? previous
    if vip == nil {
      let taken = Set(
        existing.filter { $0.kind == .service && $0.key != r.key }.compactMap { s -> IPAddress? in
          ((try? s.decodeStatus(ServiceStatus.self))??.vip).flatMap { IPAddress($0) }
        })
      guard let free = Allocators.vip(in: ServiceSpec.vipRange, taken: taken) else {
        throw ControlError(
          status: 409, code: "conflict",
          message: "\(r.key): no free virtual IP left in \(ServiceSpec.vipRange)")
      }
      vip = free.description
    }
    var out = r
    out.status = try JSONValue(encoding: ServiceStatus(vip: vip!))
    return out
  }

  /// The endpoints of a service: the workloads of its network that match its selector.
  public func endpoints(of service: String) async throws -> [ServiceEndpoint] {
    guard let r = try await self.store.get(ResourceKey(kind: .service, name: service)) else {
      throw ControlError.notFound("service/\(service) not found")
    }
    let spec = try r.decodeSpec(ServiceSpec.self)
    return ServiceEndpoint.of(spec, named: service, in: try await self.store.list(.workload).resources)
  }

  /// Records what a host's agent found of a workload's health for a service (in its status);
  /// `caller` must be an operator or the workload's host.
  public func setHealth(
    workload: String, service: String, healthy: Bool, as caller: Principal = .admin("internal")
  ) async throws -> Resource {
    try await self.serialized {
      guard var r = try await self.store.get(ResourceKey(kind: .workload, name: workload)) else {
        throw ControlError.notFound("workload/\(workload) not found")
      }
      try caller.requireWrite(r, existing: r)
      var status = (try r.decodeStatus(WorkloadStatus.self)) ?? WorkloadStatus()
      guard status.health[service] != healthy else { return r }
      status.health[service] = healthy
      r.status = try JSONValue(encoding: status)
      return try await self.store.put(r, if: .revision(r.metadata.revision ?? 0))
    }
  }

  private func putKeepingStatus(_ r: Resource) async throws -> Resource {
    let current = try await self.store.get(r.key)
    let stored = try await self.store.put(
      r, if: current.map { .revision($0.metadata.revision ?? 0) } ?? .absent)
    if r.kind == .network { try await self.allocateLeases() }
    return try await self.store.get(r.key) ?? stored
  }

  private func updateStatus<S: Codable>(
    _ key: ResourceKey, as: S.Type, _ change: (inout S) -> Void
  ) async throws -> Resource where S: DefaultStatus {
    guard var r = try await self.store.get(key) else { throw ControlError.notFound("\(key) not found") }
    var status = (try r.decodeStatus(S.self)) ?? S.empty
    change(&status)
    r.status = try JSONValue(encoding: status)
    return try await self.store.put(r, if: .revision(r.metadata.revision ?? 0))
  }
}

/// A status type with an empty value to start from.
protocol DefaultStatus {
  static var empty: Self { get }
}

extension HostStatus: DefaultStatus {
  static var empty: HostStatus { HostStatus() }
}
