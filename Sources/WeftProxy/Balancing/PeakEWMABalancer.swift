import WeftModel

/// `ewma`: latency-aware power of two choices, the way Linkerd balances. Of two distinct healthy
/// endpoints drawn at random, the one with the lower cost, where cost is the endpoint's peak-EWMA
/// round-trip time times its requests in flight plus one, divided by its weight.
///
/// A slow endpoint's estimate jumps to its slow round trips at once and only decays over several
/// seconds (``PeakEWMAConfiguration/decayNanos``), so it gets little traffic until it recovers,
/// and is tried again now and then to notice that it has.
///
/// Not thread-safe; see ``LoadBalancer``.
public final class PeakEWMABalancer<Random: RandomNumberGenerator>: LoadBalancer {
  private var table: EndpointTable
  private var random: Random

  /// The policy, `ewma`.
  public var policy: BalancerPolicy { .ewma }

  /// Creates an empty balancer drawing from `random`.
  public init(random: Random, rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()) {
    self.table = EndpointTable(rttConfiguration: rtt)
    self.random = random
  }

  /// Replaces the endpoint set; see ``LoadBalancer/update(endpoints:)``.
  public func update(endpoints: [BalancerEndpoint]) {
    _ = self.table.update(endpoints)
  }

  /// Picks the cheaper of two random healthy endpoints at time `now`; the context is ignored.
  public func pick(_ context: PickContext, now: UInt64) -> EndpointAddress? {
    guard let (first, second) = self.table.twoRandomHealthy(using: &self.random) else { return nil }
    guard let second,
      self.table.latencyCost(of: second, now: now) < self.table.latencyCost(of: first, now: now)
    else {
      return self.table.entries[first].endpoint.address
    }
    return self.table.entries[second].endpoint.address
  }

  /// Records a request start; see ``LoadBalancer/start(_:now:)``.
  public func start(_ endpoint: EndpointAddress, now: UInt64) -> RequestToken? {
    self.table.start(endpoint, now: now)
  }

  /// Records a request end and folds its round-trip time into the endpoint's estimate; see
  /// ``LoadBalancer/finish(_:now:success:)``.
  public func finish(_ token: RequestToken, now: UInt64, success: Bool) {
    self.table.finish(token, now: now, success: success)
  }

  /// See ``LoadBalancer/stats(for:)``.
  public func stats(for endpoint: EndpointAddress) -> EndpointStats? {
    self.table.stats(for: endpoint)
  }
}

extension PeakEWMABalancer where Random == SplitMix64 {
  /// Creates an empty balancer with a generator seeded from the system.
  public convenience init(rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()) {
    self.init(random: SplitMix64(), rtt: rtt)
  }
}

@available(*, unavailable)
extension PeakEWMABalancer: Sendable {}
