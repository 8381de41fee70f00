import Synchronization
import WeftModel
import WeftWire

/// Where an outbound connection goes.
public enum OutboundDecision: Sendable, Hashable {
  /// To an endpoint of a service; finish `token` with ``ServiceTable/finish(_:service:now:success:)``
  /// when the connection ends.
  case service(name: String, endpoint: EndpointAddress, protocol: ServiceProtocol, token: RequestToken?)
  /// A service with no healthy endpoint: refuse the connection.
  case noEndpoint(service: String)
  /// Not a service: to the original destination, untouched.
  case passthrough
}

/// The sidecar's routing table: virtual IP and port to service, with a balancer per service.
/// Shared by the listeners' event loops behind a lock (a pick is a few hundred nanoseconds).
public final class ServiceTable: Sendable {
  private struct Entry {
    var service: ProxyService
    var port: ServicePort
    var balancer: any LoadBalancer
  }
  private struct State {
    var snapshot = ProxySnapshot(version: -1, services: [])
    var version = -1
    var entries: [UInt64: Entry] = [:]
    var balancers: [String: any LoadBalancer] = [:]
  }
  private let state = Mutex(State())

  /// Creates an empty table.
  public init() {}

  /// The snapshot version in use.
  public var version: Int { self.state.withLock { $0.version } }

  /// Applies a snapshot: services keep their balancer (and its history) across updates unless
  /// their policy changed; connections already open are not touched.
  public func apply(_ snapshot: ProxySnapshot) {
    self.state.withLock { state in
      var entries: [UInt64: Entry] = [:]
      var balancers: [String: any LoadBalancer] = [:]
      for service in snapshot.services {
        guard let vip = IPv4Address(service.vip) else { continue }
        let policy = service.balancer.policy ?? .roundRobin
        let balancer: any LoadBalancer
        if let existing = state.balancers[service.name], existing.policy == policy {
          balancer = existing
        } else {
          balancer = BalancerConfiguration(policy: policy, hashKey: service.balancer.hashKey)
            .makeLoadBalancer()
        }
        let unhealthy = Set(service.unhealthy ?? [])
        balancer.update(
          endpoints: service.endpoints.compactMap { text in IPv4Address(text).map { (text, $0) } }.map {
            text, address in
            BalancerEndpoint(
              EndpointAddress(ipv4: address.value, port: 0), isHealthy: !unhealthy.contains(text))
          })
        balancers[service.name] = balancer
        for port in service.ports {
          entries[Self.key(vip.value, UInt16(port.port))] = Entry(
            service: service, port: port, balancer: balancer)
        }
      }
      state.entries = entries
      state.balancers = balancers
      state.version = snapshot.version
      state.snapshot = snapshot
    }
  }

  /// Decides where a connection to `destination` goes (an IPv4 address and port).
  public func decide(address: UInt32, port: UInt16, context: PickContext = .none, now: UInt64)
    -> OutboundDecision
  {
    self.state.withLock { state in
      guard let entry = state.entries[Self.key(address, port)] else { return .passthrough }
      guard let token = entry.balancer.begin(context, now: now) else {
        return .noEndpoint(service: entry.service.name)
      }
      return .service(
        name: entry.service.name,
        endpoint: EndpointAddress(ipv4: token.address.ipv4, port: UInt16(entry.port.effectiveTargetPort)),
        protocol: entry.port.effectiveProtocol, token: token)
    }
  }

  /// The pick context for a request to a VIP and port: the hash of the key its service's
  /// `ring_hash` policy names (a header, a cookie or the source address), else none.
  public func pickContext(
    address: UInt32, port: UInt16, header: (String) -> String?, source: EndpointAddress?
  ) -> PickContext {
    let key = self.state.withLock { $0.entries[Self.key(address, port)]?.service.balancer.hashKey }
    return key?.pickContext(header: header, sourceAddress: source) ?? .none
  }

  /// The service and protocol behind a VIP and port, without picking an endpoint.
  public func lookup(address: UInt32, port: UInt16) -> (service: String, protocol: ServiceProtocol)? {
    self.state.withLock { state in
      state.entries[Self.key(address, port)].map { ($0.service.name, $0.port.effectiveProtocol) }
    }
  }

  /// Ends a connection (or request) that ``decide(address:port:context:now:)`` sent to a service,
  /// so that the balancer's load and latency figures stay true.
  public func finish(_ token: RequestToken, service: String, now: UInt64, success: Bool) {
    self.state.withLock { $0.balancers[service]?.finish(token, now: now, success: success) }
  }

  /// The snapshot in use (for the admin page).
  public var snapshot: ProxySnapshot { self.state.withLock { $0.snapshot } }

  /// Every service's endpoints with what its balancer knows of them.
  public var clusters: [ClusterStatus] {
    self.state.withLock { state in
      state.snapshot.services.map { service in
        let balancer = state.balancers[service.name]
        let endpoints = service.endpoints.compactMap { IPv4Address($0) }.map {
          address -> ClusterStatus.Endpoint in
          let stats = balancer?.stats(for: EndpointAddress(ipv4: address.value, port: 0))
          return ClusterStatus.Endpoint(
            address: address.description, healthy: stats?.endpoint.isHealthy ?? false,
            active: stats?.outstanding ?? 0, completed: stats?.completed ?? 0, failed: stats?.failed ?? 0)
        }
        return ClusterStatus(
          service: service.name, vip: service.vip, policy: (service.balancer.policy ?? .roundRobin).rawValue,
          endpoints: endpoints)
      }
    }
  }

  private static func key(_ address: UInt32, _ port: UInt16) -> UInt64 {
    UInt64(address) << 16 | UInt64(port)
  }
}

/// A service's endpoints as the admin page shows them.
public struct ClusterStatus: Codable, Sendable, Hashable {
  /// One endpoint.
  public struct Endpoint: Codable, Sendable, Hashable {
    /// Its address.
    public var address: String
    /// Whether it gets traffic.
    public var healthy: Bool
    /// Connections (or requests) open now.
    public var active: Int
    /// Finished.
    public var completed: UInt64
    /// Finished with a failure (connect failed).
    public var failed: UInt64
  }

  /// The service.
  public var service: String
  /// Its virtual IP.
  public var vip: String
  /// Its balancing policy.
  public var policy: String
  /// Its endpoints.
  public var endpoints: [Endpoint]
}
