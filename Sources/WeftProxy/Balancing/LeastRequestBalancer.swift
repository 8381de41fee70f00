import WeftModel

/// `least_request`: the power of two choices. Of two distinct healthy endpoints drawn at random,
/// the one with fewer requests in flight per unit of weight.
///
/// Two random choices avoid both the herd that "always the least loaded" causes when many proxies
/// see the same loads, and the imbalance of a single random choice.
///
/// Not thread-safe; see ``LoadBalancer``.
public final class LeastRequestBalancer<Random: RandomNumberGenerator>: LoadBalancer {
  private var table: EndpointTable
  private var random: Random

  /// The policy, `least_request`.
  public var policy: BalancerPolicy { .leastRequest }

  /// Creates an empty balancer drawing from `random`.
  public init(random: Random, rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()) {
    self.table = EndpointTable(rttConfiguration: rtt)
    self.random = random
  }

  /// Replaces the endpoint set; see ``LoadBalancer/update(endpoints:)``.
  public func update(endpoints: [BalancerEndpoint]) {
    _ = self.table.update(endpoints)
  }

  /// Picks the less loaded of two random healthy endpoints; the context and time are ignored.
  public func pick(_ context: PickContext, now: UInt64) -> EndpointAddress? {
    guard let (first, second) = self.table.twoRandomHealthy(using: &self.random) else { return nil }
    guard let second, self.table.requestLoad(of: second) < self.table.requestLoad(of: first) else {
      return self.table.entries[first].endpoint.address
    }
    return self.table.entries[second].endpoint.address
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

extension LeastRequestBalancer where Random == SplitMix64 {
  /// Creates an empty balancer with a generator seeded from the system.
  public convenience init(rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()) {
    self.init(random: SplitMix64(), rtt: rtt)
  }
}

@available(*, unavailable)
extension LeastRequestBalancer: Sendable {}
