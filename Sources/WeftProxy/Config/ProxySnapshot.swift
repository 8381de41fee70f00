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
  /// The access policies that may apply to these services.
  public var policies: [ProxyAccessPolicy]?

  /// Creates a snapshot.
  public init(version: Int, services: [ProxyService], policies: [ProxyAccessPolicy]? = nil) {
    self.version = version
    self.services = services
    self.policies = policies
  }

  /// A snapshot of every service in `resources` (services, workloads and routes, as the
  /// controller lists them) with its current endpoints and its route's rules, each backend's
  /// subset resolved to endpoints. Services without a virtual IP yet are left out.
  public static func build(version: Int, from resources: [Resource], trustDomain: String? = nil)
    -> ProxySnapshot
  {
    let serviceResources = resources.filter { $0.kind == .service }
    let workloads = Dictionary(
      resources.filter { $0.kind == .workload }.map { ($0.metadata.name, $0) },
      uniquingKeysWith: { a, _ in a })
    let routes = resources.filter { $0.kind == .route }.compactMap { try? $0.decodeSpec(RouteSpec.self) }
    let services = resources.filter { $0.kind == .service }.compactMap { r -> ProxyService? in
      guard let spec = try? r.decodeSpec(ServiceSpec.self),
        let vip = (try? r.decodeStatus(ServiceStatus.self))??.vip
      else { return nil }
      let endpoints = ServiceEndpoint.of(spec, named: r.metadata.name, in: resources)
      let unhealthy = endpoints.filter { !$0.healthy }.map(\.address)
      let rules = routes.first { $0.service == r.metadata.name }?.rules.map { rule in
        ProxyRouteRule(
          name: rule.name, match: rule.match,
          backends: rule.backends.map { backend in
            ProxyBackend(
              subset: backend.subset, weight: backend.effectiveWeight,
              endpoints: endpoints.filter { backend.contains($0.labels) }.map(\.address))
          }, fault: rule.fault, retries: rule.retries, timeoutMilliseconds: rule.timeoutMilliseconds,
          rateLimit: rule.rateLimit)
      }
      return ProxyService(
        name: r.metadata.name, vip: vip, ports: spec.ports, balancer: spec.balancer ?? ServiceBalancing(),
        endpoints: endpoints.map(\.address), unhealthy: unhealthy.isEmpty ? nil : unhealthy, routes: rules,
        outlierDetection: spec.outlierDetection, circuitBreakers: spec.circuitBreakers,
        rateLimit: spec.rateLimit, mtls: spec.mtls, namespace: spec.network,
        identities: trustDomain.flatMap { domain in
          // Meshed endpoints and the identity their sidecar's certificate must name.
          let pairs = endpoints.filter { MeshIdentity.isMeshed($0.labels) }.compactMap {
            endpoint -> (String, String)? in
            guard let workload = workloads[endpoint.workload],
              let names = MeshIdentity.names(of: workload, services: serviceResources)
            else { return nil }
            return (
              endpoint.address,
              MeshIdentity.uri(trustDomain: domain, namespace: names.namespace, account: names.account)
            )
          }
          return pairs.isEmpty ? nil : Dictionary(pairs, uniquingKeysWith: { a, _ in a })
        })
    }
    let names = Set(services.map(\.name))
    let namespaces = Set(services.compactMap(\.namespace))
    let policies = resources.filter { $0.kind == .accessPolicy }.compactMap { r -> ProxyAccessPolicy? in
      guard let spec = try? r.decodeSpec(AccessPolicySpec.self) else { return nil }
      let applies =
        spec.mesh == true || spec.service.map(names.contains) == true
        || spec.namespace.map(namespaces.contains) == true
      return applies ? ProxyAccessPolicy(name: r.metadata.name, spec: spec) : nil
    }.sorted { $0.name < $1.name }
    return ProxySnapshot(
      version: version, services: services.sorted { $0.name < $1.name },
      policies: policies.isEmpty ? nil : policies)
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
  /// The service's route rules, first match wins; none: every request balanced over all endpoints.
  public var routes: [ProxyRouteRule]?
  /// Passive outlier detection, when the service asks for it.
  public var outlierDetection: OutlierDetectionSpec?
  /// Concurrency limits.
  public var circuitBreakers: CircuitBreakerSpec?
  /// The local rate limit its endpoints' sidecars enforce.
  public var rateLimit: RateLimitSpec?
  /// Whether its endpoints' sidecars take plaintext from outside the mesh.
  public var mtls: MTLSMode?
  /// The meshed endpoints (address) and the identity (SPIFFE URI) each one's certificate must
  /// name; callers speak mutual TLS to these and plaintext to the rest.
  public var identities: [String: String]?
  /// Its namespace (its network), for access policies scoped by namespace.
  public var namespace: String?

  /// Creates a service.
  public init(
    name: String, vip: String, ports: [ServicePort], balancer: ServiceBalancing, endpoints: [String],
    unhealthy: [String]? = nil, routes: [ProxyRouteRule]? = nil,
    outlierDetection: OutlierDetectionSpec? = nil,
    circuitBreakers: CircuitBreakerSpec? = nil, rateLimit: RateLimitSpec? = nil, mtls: MTLSMode? = nil,
    namespace: String? = nil, identities: [String: String]? = nil
  ) {
    self.namespace = namespace
    self.mtls = mtls
    self.identities = identities
    self.circuitBreakers = circuitBreakers
    self.rateLimit = rateLimit
    self.routes = routes
    self.outlierDetection = outlierDetection
    self.name = name
    self.vip = vip
    self.ports = ports
    self.balancer = balancer
    self.endpoints = endpoints
    self.unhealthy = unhealthy
  }
}

/// A route rule as a sidecar uses it: the match and, per backend, its weight and endpoints.
public struct ProxyRouteRule: Codable, Sendable, Hashable {
  /// The rule's name, if it has one.
  public var name: String?
  /// Which requests; nil matches all.
  public var match: RouteMatch?
  /// Where they go.
  public var backends: [ProxyBackend]
  /// Failures to inject.
  public var fault: RouteFault?
  /// Retries.
  public var retries: RouteRetries?
  /// The overall timeout, in milliseconds.
  public var timeoutMilliseconds: Int?
  /// The rule's local rate limit (inbound, at each endpoint).
  public var rateLimit: RateLimitSpec?

  /// Creates a rule.
  public init(
    name: String? = nil, match: RouteMatch? = nil, backends: [ProxyBackend], fault: RouteFault? = nil,
    retries: RouteRetries? = nil, timeoutMilliseconds: Int? = nil, rateLimit: RateLimitSpec? = nil
  ) {
    self.rateLimit = rateLimit
    self.name = name
    self.match = match
    self.backends = backends
    self.fault = fault
    self.retries = retries
    self.timeoutMilliseconds = timeoutMilliseconds
  }
}

/// One weighted share of a route rule with the endpoints (overlay addresses) of its subset.
public struct ProxyBackend: Codable, Sendable, Hashable {
  /// The labels that chose the endpoints (for display).
  public var subset: [String: String]?
  /// The relative share.
  public var weight: Int
  /// The endpoints in the subset.
  public var endpoints: [String]

  /// Creates a backend.
  public init(subset: [String: String]? = nil, weight: Int, endpoints: [String]) {
    self.subset = subset
    self.weight = weight
    self.endpoints = endpoints
  }
}
