import WeftWire

/// The application protocol a service port speaks, which tells the sidecar how to proxy it.
public enum ServiceProtocol: String, Codable, Sendable, Hashable, CaseIterable {
  /// HTTP/1.1 (requests balanced one by one, keep-alive, upgrades).
  case http
  /// HTTP/2 with prior knowledge (streams balanced one by one).
  case http2
  /// gRPC: HTTP/2 with trailers.
  case grpc
  /// Opaque TCP (connections balanced, bytes passed through with half-close).
  case tcp
}

/// One port of a service: what clients call and where the workloads listen.
public struct ServicePort: Codable, Sendable, Hashable {
  /// A name for the port (optional; unique within the service when given).
  public var name: String?
  /// The port clients call on the service's VIP or name.
  public var port: Int
  /// The port the workloads listen on (the same as `port` when absent).
  public var targetPort: Int?
  /// What the port speaks (`tcp` when absent).
  public var `protocol`: ServiceProtocol?

  /// The fields a port may have.
  public static let fields: Set<String> = ["name", "port", "targetPort", "protocol"]

  /// Creates a port.
  public init(name: String? = nil, port: Int, targetPort: Int? = nil, protocol: ServiceProtocol? = nil) {
    self.name = name
    self.port = port
    self.targetPort = targetPort
    self.protocol = `protocol`
  }

  /// The workloads' port.
  public var effectiveTargetPort: Int { self.targetPort ?? self.port }
  /// The protocol, `tcp` by default.
  public var effectiveProtocol: ServiceProtocol { self.protocol ?? .tcp }
}

/// How the agents check a service's local endpoints: an HTTP GET of `path` (2xx is healthy) or,
/// without a path, a TCP connect to the first port's target port.
public struct ServiceHealthCheck: Codable, Sendable, Hashable {
  /// The HTTP path, e.g. `/healthz`; absent: TCP connect.
  public var path: String?
  /// Seconds between checks (default 5).
  public var intervalSeconds: Int?
  /// How long a check may take, in milliseconds (default 1000).
  public var timeoutMilliseconds: Int?

  /// The fields a health check may have.
  public static let fields: Set<String> = ["path", "intervalSeconds", "timeoutMilliseconds"]

  /// Creates a health check.
  public init(path: String? = nil, intervalSeconds: Int? = nil, timeoutMilliseconds: Int? = nil) {
    self.path = path
    self.intervalSeconds = intervalSeconds
    self.timeoutMilliseconds = timeoutMilliseconds
  }

  /// The interval.
  public var interval: Duration { .seconds(self.intervalSeconds ?? 5) }
  /// The timeout.
  public var timeout: Duration { .milliseconds(self.timeoutMilliseconds ?? 1000) }
}

/// What an agent found of a workload's health, per service, in the Workload's status.
public struct WorkloadStatus: Codable, Sendable, Hashable {
  /// Healthy or not, by service name; a service missing here has not been checked (healthy).
  public var health: [String: Bool]

  /// Creates a status.
  public init(health: [String: Bool] = [:]) { self.health = health }
}

/// How a service spreads requests over its healthy endpoints.
public struct ServiceBalancing: Codable, Sendable, Hashable {
  /// The policy (`round_robin` when absent).
  public var policy: BalancerPolicy?
  /// For `ring_hash`: where the key comes from (the source address when absent).
  public var hashKey: HashKeySource?

  /// The fields the balancer mapping may have.
  public static let fields: Set<String> = ["policy", "hashKey"]

  /// Creates a balancing choice.
  public init(policy: BalancerPolicy? = nil, hashKey: HashKeySource? = nil) {
    self.policy = policy
    self.hashKey = hashKey
  }
}

/// The spec of a `Service`: a name for the workloads of one network whose labels match a
/// selector, the ports they serve, and how to balance over them. Clients reach it at
/// `<name>.weft` or its virtual IP from 100.64.0.0/16.
public struct ServiceSpec: Codable, Sendable, Hashable {
  /// The network whose workloads serve it.
  public var network: String
  /// Workload labels that must all match (a workload with every one of these is an endpoint).
  public var selector: [String: String]
  /// The ports, at least one.
  public var ports: [ServicePort]
  /// The balancing policy.
  public var balancer: ServiceBalancing?
  /// A virtual IP asked for (in ``ServiceSpec/vipRange``); one is allocated when absent.
  public var vip: String?
  /// How agents check the endpoints; none: every endpoint is taken as healthy.
  public var healthCheck: ServiceHealthCheck?
  /// Passive outlier detection by the calling sidecars; none: off.
  public var outlierDetection: OutlierDetectionSpec?
  /// Concurrency limits the calling sidecars enforce (generous by default).
  public var circuitBreakers: CircuitBreakerSpec?
  /// A local rate limit each endpoint's sidecar enforces on what it receives; none: unlimited.
  public var rateLimit: RateLimitSpec?
  /// Whether its meshed endpoints take plaintext from outside the mesh (default permissive).
  public var mtls: MTLSMode?

  /// The fields a spec may have.
  public static let fields: Set<String> = [
    "network", "selector", "ports", "balancer", "vip", "healthCheck", "outlierDetection", "circuitBreakers",
    "rateLimit", "mtls",
  ]
  /// Where service virtual IPs come from.
  public static let vipRange = IPPrefix("100.64.0.0/16")!

  /// Creates a spec.
  public init(
    network: String, selector: [String: String], ports: [ServicePort], balancer: ServiceBalancing? = nil,
    vip: String? = nil, healthCheck: ServiceHealthCheck? = nil, outlierDetection: OutlierDetectionSpec? = nil
  ) {
    self.outlierDetection = outlierDetection
    self.circuitBreakers = nil
    self.rateLimit = nil
    self.mtls = nil
    self.network = network
    self.selector = selector
    self.ports = ports
    self.balancer = balancer
    self.vip = vip
    self.healthCheck = healthCheck
  }

  /// True when a workload with these labels is one of the service's endpoints.
  public func selects(_ labels: [String: String]?) -> Bool {
    let labels = labels ?? [:]
    return self.selector.allSatisfy { labels[$0.key] == $0.value }
  }
}

/// What the controller records for a service.
public struct ServiceStatus: Codable, Sendable, Hashable {
  /// The virtual IP.
  public var vip: String

  /// Creates a status.
  public init(vip: String) { self.vip = vip }
}

/// One endpoint of a service: a workload that matches its selector, where to reach it.
public struct ServiceEndpoint: Codable, Sendable, Hashable {
  /// The workload's name.
  public var workload: String
  /// Its host.
  public var host: String
  /// Its overlay address (empty until the agent has given it one).
  public var address: String
  /// Its labels (balancing splits and routes select on them).
  public var labels: [String: String]
  /// Whether its host's agent last found it healthy (true when not checked).
  public var healthy: Bool

  /// Creates an endpoint.
  public init(workload: String, host: String, address: String, labels: [String: String], healthy: Bool = true)
  {
    self.workload = workload
    self.host = host
    self.address = address
    self.labels = labels
    self.healthy = healthy
  }

  /// The endpoints of service `name` among `resources`: the workloads of its network whose labels
  /// match its selector and that have an address, sorted by workload name, with their health.
  public static func of(_ service: ServiceSpec, named name: String, in resources: [Resource])
    -> [ServiceEndpoint]
  {
    resources.compactMap { r -> ServiceEndpoint? in
      guard r.kind == .workload, let spec = try? r.decodeSpec(WorkloadSpec.self),
        spec.network == service.network, service.selects(r.metadata.labels),
        let address = spec.address, !address.isEmpty
      else { return nil }
      let health = ((try? r.decodeStatus(WorkloadStatus.self)) ?? nil)?.health[name] ?? true
      return ServiceEndpoint(
        workload: r.metadata.name, host: spec.host, address: address, labels: r.metadata.labels ?? [:],
        healthy: health)
    }.sorted { $0.workload < $1.workload }
  }
}
