/// The endpoints of one balancer and what it tracks about each: requests in flight, the
/// round-trip estimate, counters. Shared by every policy.
///
/// ``update(_:)`` keeps the state of endpoints whose address stays, so that a new config does not
/// forget load or latency.
struct EndpointTable {
  struct Entry {
    var endpoint: BalancerEndpoint
    var generation: UInt64
    var outstanding: Int = 0
    var rtt: PeakEWMA
    var completed: UInt64 = 0
    var failed: UInt64 = 0
  }

  /// What an ``update(_:)`` changed.
  enum Change: Equatable {
    /// Same endpoints, weights, order and health.
    case none
    /// Only health flags changed.
    case health
    /// Endpoints joined, left, moved or changed weight.
    case membership
  }

  let rttConfiguration: PeakEWMAConfiguration
  /// The endpoints in the order last given, without duplicate addresses.
  private(set) var entries: [Entry] = []
  /// Indices into ``entries`` of the healthy endpoints, in order.
  private(set) var healthy: [Int] = []
  /// Whether every healthy endpoint has the same weight.
  private(set) var healthyWeightsAreEqual = true
  private var indexByAddress: [EndpointAddress: Int] = [:]
  private var nextGeneration: UInt64 = 0

  init(rttConfiguration: PeakEWMAConfiguration) {
    self.rttConfiguration = rttConfiguration
  }

  /// Replaces the endpoint set. The first of several entries with one address wins.
  mutating func update(_ endpoints: [BalancerEndpoint]) -> Change {
    var entries: [Entry] = []
    entries.reserveCapacity(endpoints.count)
    var indexByAddress: [EndpointAddress: Int] = [:]
    indexByAddress.reserveCapacity(endpoints.count)
    for endpoint in endpoints where indexByAddress[endpoint.address] == nil {
      indexByAddress[endpoint.address] = entries.count
      if let old = self.indexByAddress[endpoint.address] {
        var entry = self.entries[old]
        entry.endpoint = endpoint
        entries.append(entry)
      } else {
        entries.append(
          Entry(
            endpoint: endpoint, generation: self.nextGeneration,
            rtt: PeakEWMA(initialNanos: self.rttConfiguration.defaultRTTNanos)))
        self.nextGeneration += 1
      }
    }
    let change = Self.change(from: self.entries, to: entries)
    self.entries = entries
    self.indexByAddress = indexByAddress
    self.healthy = entries.indices.filter { entries[$0].endpoint.isHealthy }
    let firstWeight = self.healthy.first.map { entries[$0].endpoint.weight }
    self.healthyWeightsAreEqual = self.healthy.allSatisfy { entries[$0].endpoint.weight == firstWeight }
    return change
  }

  private static func change(from old: [Entry], to new: [Entry]) -> Change {
    guard old.count == new.count else { return .membership }
    var change = Change.none
    for (a, b) in zip(old, new) {
      guard a.endpoint.address == b.endpoint.address, a.endpoint.weight == b.endpoint.weight else {
        return .membership
      }
      if a.endpoint.isHealthy != b.endpoint.isHealthy { change = .health }
    }
    return change
  }

  /// The index of the endpoint with this address.
  func index(of address: EndpointAddress) -> Int? {
    self.indexByAddress[address]
  }

  mutating func start(_ address: EndpointAddress, now: UInt64) -> RequestToken? {
    guard let index = self.indexByAddress[address] else { return nil }
    self.entries[index].outstanding += 1
    return RequestToken(address: address, startedAt: now, generation: self.entries[index].generation)
  }

  mutating func finish(_ token: RequestToken, now: UInt64, success: Bool) {
    guard let index = self.indexByAddress[token.address],
      self.entries[index].generation == token.generation
    else { return }
    var rtt = now >= token.startedAt ? now - token.startedAt : 0
    if !success, let penalty = self.rttConfiguration.failurePenaltyNanos {
      rtt = max(rtt, penalty)
    }
    self.entries[index].outstanding = max(self.entries[index].outstanding - 1, 0)
    self.entries[index].completed += 1
    if !success { self.entries[index].failed += 1 }
    self.entries[index].rtt.observe(
      rttNanos: rtt, now: now, decayNanos: self.rttConfiguration.decayNanos)
  }

  /// Requests in flight per unit of weight, plus one: the load `least_request` compares.
  func requestLoad(of index: Int) -> Double {
    Double(self.entries[index].outstanding + 1) / Double(self.entries[index].endpoint.weight)
  }

  /// The decayed round-trip estimate times requests in flight plus one, per unit of weight: the
  /// cost `ewma` compares.
  mutating func latencyCost(of index: Int, now: UInt64) -> Double {
    let estimate = self.entries[index].rtt.decayed(
      now: now, decayNanos: self.rttConfiguration.decayNanos)
    return estimate * self.requestLoad(of: index)
  }

  func stats(for address: EndpointAddress) -> EndpointStats? {
    guard let index = self.indexByAddress[address] else { return nil }
    let entry = self.entries[index]
    return EndpointStats(
      endpoint: entry.endpoint, outstanding: entry.outstanding,
      rttEstimateNanos: entry.rtt.estimate, completed: entry.completed, failed: entry.failed)
  }

  /// Two distinct healthy endpoint indices chosen uniformly at random, or one when only one is
  /// healthy, or none.
  func twoRandomHealthy<Random: RandomNumberGenerator>(
    using random: inout Random
  ) -> (Int, Int?)? {
    let count = self.healthy.count
    switch count {
    case 0:
      return nil
    case 1:
      return (self.healthy[0], nil)
    default:
      let first = Int.random(in: 0..<count, using: &random)
      var second = Int.random(in: 0..<(count - 1), using: &random)
      if second >= first { second += 1 }
      return (self.healthy[first], self.healthy[second])
    }
  }
}
