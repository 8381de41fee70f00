import Testing

@testable import WeftProxy

@Suite struct RandomBalancerTests {
  @Test func sharesFollowWeights() {
    let hosts = addresses(3)
    let balancer = RandomBalancer(random: SplitMix64(seed: 9))
    balancer.update(endpoints: zip(hosts, [1, 2, 5] as [UInt32]).map { BalancerEndpoint($0, weight: $1) })
    let counts = pickCounts(balancer, count: 80_000)
    #expect(abs(counts[hosts[0], default: 0] - 10_000) < 600)
    #expect(abs(counts[hosts[1], default: 0] - 20_000) < 800)
    #expect(abs(counts[hosts[2], default: 0] - 50_000) < 1_000)
  }

  @Test func sameSeedSamePicks() {
    let hosts = addresses(5)
    let a = RandomBalancer(random: SplitMix64(seed: 10))
    let b = RandomBalancer(random: SplitMix64(seed: 10))
    a.update(endpoints: endpoints(hosts))
    b.update(endpoints: endpoints(hosts))
    for _ in 0..<100 { #expect(a.pick(.none, now: 0) == b.pick(.none, now: 0)) }
  }
}
