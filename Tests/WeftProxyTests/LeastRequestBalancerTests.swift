import Testing

@testable import WeftProxy

@Suite struct LeastRequestBalancerTests {
  @Test func prefersTheLessLoaded() {
    let hosts = addresses(3)
    let balancer = LeastRequestBalancer(random: SplitMix64(seed: 5))
    balancer.update(endpoints: endpoints(hosts))
    for _ in 0..<4 { _ = balancer.start(hosts[0], now: 0) }
    _ = balancer.start(hosts[1], now: 0)
    let counts = pickCounts(balancer, count: 3_000)
    // hosts[0] loses every comparison; hosts[2] (idle) wins each one it is drawn into.
    #expect(counts[hosts[0]] == nil)
    #expect(counts[hosts[2], default: 0] > 1_800)
  }

  @Test func slowEndpointAccumulatesLoadAndGetsLess() {
    let hosts = addresses(4)
    let balancer = LeastRequestBalancer(random: SplitMix64(seed: 6))
    balancer.update(endpoints: endpoints(hosts))
    let counts = simulate(balancer, requests: 10_000, intervalNanos: 1_000_000) {
      $0 == hosts[0] ? 40_000_000 : 2_000_000
    }
    // An even share is 2 500.
    #expect(counts[hosts[0], default: 0] < 2_500 / 2, "\(counts)")
  }

  @Test func loadIsPerUnitOfWeight() {
    let hosts = addresses(2)
    let balancer = LeastRequestBalancer(random: SplitMix64(seed: 7))
    balancer.update(endpoints: [BalancerEndpoint(hosts[0], weight: 4), BalancerEndpoint(hosts[1])])
    // 3 in flight on weight 4 is (3+1)/4 = 1, less than (1+1)/1 = 2 with 1 in flight.
    for _ in 0..<3 { _ = balancer.start(hosts[0], now: 0) }
    _ = balancer.start(hosts[1], now: 0)
    #expect(pickCounts(balancer, count: 50) == [hosts[0]: 50])
  }

  @Test func finishingReleasesLoad() {
    let hosts = addresses(2)
    let balancer = LeastRequestBalancer(random: SplitMix64(seed: 8))
    balancer.update(endpoints: endpoints(hosts))
    let tokens = (0..<5).map { _ in balancer.start(hosts[0], now: 0)! }
    #expect(pickCounts(balancer, count: 20) == [hosts[1]: 20])
    for token in tokens { balancer.finish(token, now: 1_000_000, success: true) }
    #expect(balancer.stats(for: hosts[0])?.outstanding == 0)
    #expect(pickCounts(balancer, count: 200).count == 2)
  }
}
