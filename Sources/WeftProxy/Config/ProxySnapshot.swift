import WeftModel
import WeftWire

/// What a sidecar knows of the mesh: the services its workload may call, each with its virtual IP,
/// ports, balancing policy and endpoints. The agent will deliver these as a stream of versioned
/// snapshots; for now a snapshot is read from a file (`weft proxy --config`).
public struct ProxySnapshot: Codable, Sendable, Hashable {
  /// Increases with every change.
  public var version: Int
  /// The services.
  public var services: [ProxyService]

  /// Creates a snapshot.
  public init(version: Int, services: [ProxyService]) {
    self.version = version
    self.services = services
  }

  /// A snapshot of every service in `resources` (services and workloads, as the controller lists
  /// them) with its current endpoints. Services without a virtual IP yet are left out.
  public static func build(version: Int, from resources: [Resource]) -> ProxySnapshot {
    let services = resources.filter { $0.kind == .service }.compactMap { r -> ProxyService? in
      guard let spec = try? r.decodeSpec(ServiceSpec.self),
        let vip = (try? r.decodeStatus(ServiceStatus.self))??.vip
      else { return nil }
      let endpoints = ServiceEndpoint.of(spec, named: r.metadata.name, in: resources)
      let unhealthy = endpoints.filter { !$0.healthy }.map(\.address)
      return ProxyService(
        name: r.metadata.name, vip: vip, ports: spec.ports, balancer: spec.balancer ?? ServiceBalancing(),
        endpoints: endpoints.map(\.address), unhealthy: unhealthy.isEmpty ? nil : unhealthy)
    }
    return ProxySnapshot(version: version, services: services.sorted { $0.name < $1.name })
  }
}

/// One service as a sidecar sees it.
public struct ProxyService: Codable, Sendable, Hashable {
  /// The service's name.
  public var name: String
  /// Its virtual IP.
  public var vip: String
  /// Its ports.
  public var ports: [ServicePort]
  /// How to balance.
  public var balancer: ServiceBalancing
  /// The endpoints' overlay addresses (IPv4).
  public var endpoints: [String]
  /// Those of them whose health check fails: they get no traffic.
  public var unhealthy: [String]?

  /// Creates a service.
  public init(
    name: String, vip: String, ports: [ServicePort], balancer: ServiceBalancing, endpoints: [String],
    unhealthy: [String]? = nil
  ) {
    self.name = name
    self.vip = vip
    self.ports = ports
    self.balancer = balancer
    self.endpoints = endpoints
    self.unhealthy = unhealthy
  }
}
