import WeftModel

/// `round_robin`: each healthy endpoint in turn, in proportion to its weight.
///
/// With equal weights it cycles through the healthy endpoints in the order given. With unequal
/// weights it runs nginx's smooth weighted round robin, which spreads an endpoint's turns out
/// (weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`). Updating with an unchanged set
/// leaves the rotation where it was.
///
/// Not thread-safe; see ``LoadBalancer``.
public final class RoundRobinBalancer: LoadBalancer {
  private var table: EndpointTable
  /// Equal weights: the position in the healthy list of the next pick.
  private var cursor: Int
  /// Unequal weights: the smooth round robin's running weight per entry, by entry index.
  private var currentWeights: [Int64] = []

  /// The policy, `round_robin`.
  public var policy: BalancerPolicy { .roundRobin }

  /// Creates an empty balancer.
  ///
  /// - Parameter startOffset: Where the rotation begins. Give each proxy a random offset so that
  ///   many proxies starting at once do not all send their first request to the same endpoint.
  public init(startOffset: Int = 0, rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()) {
    self.table = EndpointTable(rttConfiguration: rtt)
    self.cursor = max(startOffset, 0)
  }

  /// Replaces the endpoint set; see ``LoadBalancer/update(endpoints:)``.
  public func update(endpoints: [BalancerEndpoint]) {
    let previous = self.table.entries.map(\.endpoint.address)
    guard self.table.update(endpoints) != .none else { return }
    var carried: [EndpointAddress: Int64] = [:]
    for (address, weight) in zip(previous, self.currentWeights) { carried[address] = weight }
    self.currentWeights = self.table.entries.map { carried[$0.endpoint.address] ?? 0 }
  }

  /// Picks the next healthy endpoint in the rotation; the context and time are ignored.
  public func pick(_ context: PickContext, now: UInt64) -> EndpointAddress? {
    let healthy = self.table.healthy
    guard !healthy.isEmpty else { return nil }
    if self.table.healthyWeightsAreEqual {
      let index = healthy[self.cursor % healthy.count]
      self.cursor = (self.cursor % healthy.count) + 1
      return self.table.entries[index].endpoint.address
    }
    var total: Int64 = 0
    var best = healthy[0]
    for index in healthy {
      let weight = Int64(self.table.entries[index].endpoint.weight)
      total += weight
      self.currentWeights[index] += weight
      if self.currentWeights[index] > self.currentWeights[best] { best = index }
    }
    self.currentWeights[best] -= total
    return self.table.entries[best].endpoint.address
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

@available(*, unavailable)
extension RoundRobinBalancer: Sendable {}
