import WeftModel

/// How one service is balanced: the policy from its spec and the tuning that goes with it.
public struct BalancerConfiguration: Hashable, Sendable {
  /// The policy.
  public var policy: BalancerPolicy
  /// Where `ring_hash` finds each request's key; `nil` places every request at random. The caller
  /// turns it into a ``PickContext`` with ``HashKeySource/pickContext(header:sourceAddress:)``.
  public var hashKey: HashKeySource?
  /// The ring of `ring_hash`.
  public var ringHash: RingHashConfiguration
  /// The round-trip estimate every policy tracks and `ewma` balances on.
  public var rtt: PeakEWMAConfiguration

  /// Creates a configuration.
  public init(
    policy: BalancerPolicy, hashKey: HashKeySource? = nil,
    ringHash: RingHashConfiguration = RingHashConfiguration(),
    rtt: PeakEWMAConfiguration = PeakEWMAConfiguration()
  ) {
    self.policy = policy
    self.hashKey = hashKey
    self.ringHash = ringHash
    self.rtt = rtt
  }

  /// Creates an empty balancer for this configuration that draws from `random`.
  ///
  /// Round robin draws once, for where its rotation starts.
  public func makeLoadBalancer<Random: RandomNumberGenerator>(random: Random) -> any LoadBalancer {
    var random = random
    switch self.policy {
    case .roundRobin:
      return RoundRobinBalancer(
        startOffset: Int(truncatingIfNeeded: random.next() >> 1), rtt: self.rtt)
    case .leastRequest:
      return LeastRequestBalancer(random: random, rtt: self.rtt)
    case .ewma:
      return PeakEWMABalancer(random: random, rtt: self.rtt)
    case .ringHash:
      return RingHashBalancer(configuration: self.ringHash, random: random, rtt: self.rtt)
    case .random:
      return RandomBalancer(random: random, rtt: self.rtt)
    }
  }

  /// Creates an empty balancer for this configuration with a generator seeded from the system.
  public func makeLoadBalancer() -> any LoadBalancer {
    self.makeLoadBalancer(random: SplitMix64())
  }
}
