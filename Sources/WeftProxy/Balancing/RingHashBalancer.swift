import WeftModel

/// Tuning of the `ring_hash` ring.
public struct RingHashConfiguration: Hashable, Sendable {
  /// Points on the ring per unit of endpoint weight. More points spread keys more evenly (the
  /// share of an endpoint varies by about `1/√points`) at the cost of memory and rebuild time.
  public let virtualNodesPerWeight: Int
  /// The most points the ring may hold; above it, every endpoint's count is scaled down (and the
  /// minimal-movement guarantee weakens). Keep weights small integers to stay below it.
  public let maximumRingSize: Int

  /// Creates a configuration. `virtualNodesPerWeight` is clamped to `1...65_536` and
  /// `maximumRingSize` to `1...(1 << 24)`.
  public init(virtualNodesPerWeight: Int = 128, maximumRingSize: Int = 1 << 20) {
    self.virtualNodesPerWeight = min(max(virtualNodesPerWeight, 1), 1 << 16)
    self.maximumRingSize = min(max(maximumRingSize, 1), 1 << 24)
  }
}

/// `ring_hash`: consistent hashing on the request's key (``PickContext/hash``), so that requests
/// with one key go to one endpoint while it stays healthy.
///
/// When an endpoint leaves or turns unhealthy, only the keys it held move (each to the next
/// healthy endpoint along the ring); when one of `N` endpoints joins, about `1/(N+1)` of the keys
/// move to it. A request without a key goes to a random point of the ring.
///
/// Not thread-safe; see ``LoadBalancer``.
public final class RingHashBalancer<Random: RandomNumberGenerator>: LoadBalancer {
  private var table: EndpointTable
  private var random: Random
  private var ring = HashRing()
  /// The ring's configuration.
  public let configuration: RingHashConfiguration

  /// The policy, `ring_hash`.
  public var policy: BalancerPolicy { .ringHash }

  /// Creates an empty balancer; `random` places requests that have no key.
  public init(
    configuration: RingHashConfiguration = RingHashConfiguration(), random: Random,
    rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()
  ) {
    self.table = EndpointTable(rttConfiguration: rtt)
    self.random = random
    self.configuration = configuration
  }

  /// Replaces the endpoint set; see ``LoadBalancer/update(endpoints:)``. The ring is rebuilt
  /// only when endpoints join, leave or change weight, not when only health changes.
  public func update(endpoints: [BalancerEndpoint]) {
    guard self.table.update(endpoints) == .membership else { return }
    self.ring = HashRing(endpoints: self.table.entries.map(\.endpoint), configuration: self.configuration)
  }

  /// Picks the healthy endpoint owning the context's key; the time is ignored.
  public func pick(_ context: PickContext, now: UInt64) -> EndpointAddress? {
    guard !self.table.healthy.isEmpty else { return nil }
    let hash = context.hash ?? self.random.next()
    let owners = self.ring.owners
    var point = self.ring.firstPoint(atOrAfter: hash)
    // Every endpoint owns at least one point, so a healthy one turns up within one lap.
    for _ in 0..<owners.count {
      let entry = self.table.entries[owners[point]]
      if entry.endpoint.isHealthy { return entry.endpoint.address }
      point += 1
      if point == owners.count { point = 0 }
    }
    return nil
  }

  /// Records a request start; see ``LoadBalancer/start(_:now:)``.
  public func start(_ endpoint: EndpointAddress, now: UInt64) -> RequestToken? {
    self.table.start(endpoint, now: now)
  }

  /// Records a request end; see ``LoadBalancer/finish(_:now:success:)``.
  public func finish(_ token: RequestToken, now: UInt64, success: Bool) {
    self.table.finish(token, now: now, success: success)
  }

  /// See ``LoadBalancer/stats(for:)``.
  public func stats(for endpoint: EndpointAddress) -> EndpointStats? {
    self.table.stats(for: endpoint)
  }
}

extension RingHashBalancer where Random == SplitMix64 {
  /// Creates an empty balancer with a generator seeded from the system.
  public convenience init(
    configuration: RingHashConfiguration = RingHashConfiguration(),
    rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()
  ) {
    self.init(configuration: configuration, random: SplitMix64(), rtt: rtt)
  }
}

@available(*, unavailable)
extension RingHashBalancer: Sendable {}
