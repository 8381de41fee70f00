import Testing
import WeftModel

@testable import WeftProxy

/// What every policy promises.
@Suite struct LoadBalancerContractTests {
  @Test func emptySetPicksNothing() {
    for balancer in everyBalancer() {
      #expect(balancer.pick(.none, now: 0) == nil, "\(balancer.policy)")
      #expect(balancer.pick(PickContext(hashKey: "k"), now: 0) == nil, "\(balancer.policy)")
      #expect(balancer.begin(now: 0) == nil, "\(balancer.policy)")
      balancer.update(endpoints: endpoints(addresses(3)))
      balancer.update(endpoints: [])
      #expect(balancer.pick(.none, now: 0) == nil, "\(balancer.policy)")
    }
  }

  @Test func allUnhealthyPicksNothing() {
    for balancer in everyBalancer() {
      balancer.update(endpoints: addresses(4).map { BalancerEndpoint($0, isHealthy: false) })
      for i in 0..<50 {
        #expect(balancer.pick(PickContext(hashKey: "k\(i)"), now: UInt64(i)) == nil, "\(balancer.policy)")
      }
    }
  }

  @Test func unhealthyIsNeverPicked() {
    let hosts = addresses(6)
    var set = endpoints(hosts)
    for index in [0, 2, 3] { set[index].isHealthy = false }
    let healthy = Set([hosts[1], hosts[4], hosts[5]])
    for balancer in everyBalancer() {
      balancer.update(endpoints: set)
      let counts = pickCounts(balancer, count: 3_000) { PickContext(hashKey: "key-\($0)") }
      #expect(Set(counts.keys) == healthy, "\(balancer.policy): \(counts)")
      let simulated = simulate(balancer, requests: 2_000, intervalNanos: 1_000_000) { _ in 3_000_000 }
      #expect(Set(simulated.keys).isSubset(of: healthy), "\(balancer.policy)")
    }
  }

  @Test func singleHealthyEndpointTakesEverything() {
    let hosts = addresses(3)
    for balancer in everyBalancer() {
      balancer.update(endpoints: [
        BalancerEndpoint(hosts[0], isHealthy: false), BalancerEndpoint(hosts[1]),
        BalancerEndpoint(hosts[2], isHealthy: false),
      ])
      #expect(pickCounts(balancer, count: 100) == [hosts[1]: 100], "\(balancer.policy)")
    }
  }

  @Test func updateKeepsStateOfEndpointsThatStay() {
    let hosts = addresses(3)
    for balancer in everyBalancer() {
      balancer.update(endpoints: endpoints(hosts))
      let kept = balancer.start(hosts[0], now: 0)!
      let dropped = balancer.start(hosts[2], now: 0)!
      balancer.update(endpoints: endpoints([hosts[1], hosts[0]]))
      #expect(balancer.stats(for: hosts[0])?.outstanding == 1, "\(balancer.policy)")
      #expect(balancer.stats(for: hosts[2]) == nil)
      #expect(balancer.start(hosts[2], now: 0) == nil)
      // A token for an endpoint that left is ignored, even after it rejoins.
      balancer.update(endpoints: endpoints(hosts))
      balancer.finish(dropped, now: 10, success: true)
      #expect(balancer.stats(for: hosts[2])?.completed == 0, "\(balancer.policy)")
      balancer.finish(kept, now: 10, success: true)
      #expect(balancer.stats(for: hosts[0])?.outstanding == 0, "\(balancer.policy)")
      #expect(balancer.stats(for: hosts[0])?.completed == 1, "\(balancer.policy)")
    }
  }

  @Test func duplicateAddressesCountOnce() {
    let hosts = addresses(2)
    for balancer in everyBalancer() {
      balancer.update(endpoints: [
        BalancerEndpoint(hosts[0]), BalancerEndpoint(hosts[0], isHealthy: false), BalancerEndpoint(hosts[1]),
      ])
      #expect(balancer.stats(for: hosts[0])?.endpoint.isHealthy == true, "\(balancer.policy)")
      #expect(pickCounts(balancer, count: 400).count == 2, "\(balancer.policy)")
    }
  }

  @Test func factoryBuildsThePolicyAsked() {
    #expect(everyBalancer().map(\.policy) == BalancerPolicy.allCases)
    #expect(BalancerConfiguration(policy: .ewma).makeLoadBalancer() is PeakEWMABalancer<SplitMix64>)
  }
}
