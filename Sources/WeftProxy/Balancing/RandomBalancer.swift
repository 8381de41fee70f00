import WeftModel

/// `random`: a healthy endpoint drawn at random, in proportion to its weight.
///
/// Not thread-safe; see ``LoadBalancer``.
public final class RandomBalancer<Random: RandomNumberGenerator>: LoadBalancer {
  private var table: EndpointTable
  private var random: Random
  /// Running sums of the healthy endpoints' weights, parallel to `table.healthy`.
  private var cumulativeWeights: [UInt64] = []

  /// The policy, `random`.
  public var policy: BalancerPolicy { .random }

  /// Creates an empty balancer drawing from `random`.
  public init(random: Random, rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()) {
    self.table = EndpointTable(rttConfiguration: rtt)
    self.random = random
  }

  /// Replaces the endpoint set; see ``LoadBalancer/update(endpoints:)``.
  public func update(endpoints: [BalancerEndpoint]) {
    guard self.table.update(endpoints) != .none else { return }
    var sum: UInt64 = 0
    self.cumulativeWeights = self.table.healthy.map {
      sum += UInt64(self.table.entries[$0].endpoint.weight)
      return sum
    }
  }

  /// Picks a random healthy endpoint, weighted; the context and time are ignored.
  public func pick(_ context: PickContext, now: UInt64) -> EndpointAddress? {
    guard let total = self.cumulativeWeights.last else { return nil }
    let point = UInt64.random(in: 0..<total, using: &self.random)
    // The first running sum above `point`.
    var low = 0
    var high = self.cumulativeWeights.count - 1
    while low < high {
      let middle = (low + high) / 2
      if self.cumulativeWeights[middle] > point { high = middle } else { low = middle + 1 }
    }
    return self.table.entries[self.table.healthy[low]].endpoint.address
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

extension RandomBalancer where Random == SplitMix64 {
  /// Creates an empty balancer with a generator seeded from the system.
  public convenience init(rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()) {
    self.init(random: SplitMix64(), rtt: rtt)
  }
}

@available(*, unavailable)
extension RandomBalancer: Sendable {}
