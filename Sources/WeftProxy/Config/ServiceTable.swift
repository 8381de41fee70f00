import Synchronization
import WeftModel
import WeftWire

/// Where an outbound connection goes.
public enum OutboundDecision: Sendable, Hashable {
  /// To an endpoint of a service.
  case service(name: String, endpoint: EndpointAddress, protocol: ServiceProtocol)
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
        balancer.update(
          endpoints: service.endpoints.compactMap { IPv4Address($0) }.map {
            BalancerEndpoint(EndpointAddress(ipv4: $0.value, port: 0))
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
    }
  }

  /// Decides where a connection to `destination` goes (an IPv4 address and port).
  public func decide(address: UInt32, port: UInt16, context: PickContext = .none, now: UInt64)
    -> OutboundDecision
  {
    self.state.withLock { state in
      guard let entry = state.entries[Self.key(address, port)] else { return .passthrough }
      guard let picked = entry.balancer.pick(context, now: now) else {
        return .noEndpoint(service: entry.service.name)
      }
      return .service(
        name: entry.service.name,
        endpoint: EndpointAddress(ipv4: picked.ipv4, port: UInt16(entry.port.effectiveTargetPort)),
        protocol: entry.port.effectiveProtocol)
    }
  }

  private static func key(_ address: UInt32, _ port: UInt16) -> UInt64 {
    UInt64(address) << 16 | UInt64(port)
  }
}
