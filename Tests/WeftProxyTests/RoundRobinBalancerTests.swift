import Testing

@testable import WeftProxy

@Suite struct RoundRobinBalancerTests {
  @Test func equalWeightsShareEvenly() {
    let balancer = RoundRobinBalancer()
    let hosts = addresses(7)
    balancer.update(endpoints: endpoints(hosts))
    let counts = pickCounts(balancer, count: 70_000)
    for host in hosts {
      // Within 1% of the even share (in fact exact).
      #expect(abs(counts[host, default: 0] - 10_000) <= 100)
    }
  }

  @Test func cyclesInOrderFromTheStartOffset() {
    let hosts = addresses(3)
    let balancer = RoundRobinBalancer(startOffset: 1)
    balancer.update(endpoints: endpoints(hosts))
    let picks = (0..<6).map { _ in balancer.pick(.none, now: 0) }
    #expect(picks == [hosts[1], hosts[2], hosts[0], hosts[1], hosts[2], hosts[0]])
  }

  @Test func weightsAreSmooth() {
    let hosts = addresses(3)
    let balancer = RoundRobinBalancer()
    balancer.update(endpoints: [
      BalancerEndpoint(hosts[0], weight: 5), BalancerEndpoint(hosts[1]), BalancerEndpoint(hosts[2]),
    ])
    let picks = (0..<7).map { _ in balancer.pick(.none, now: 0) }
    // nginx's smooth weighted round robin for 5, 1, 1.
    #expect(picks == [hosts[0], hosts[0], hosts[1], hosts[0], hosts[2], hosts[0], hosts[0]])
  }

  @Test func weightedSharesAreExactOverAFullCycle() {
    let hosts = addresses(3)
    let balancer = RoundRobinBalancer()
    balancer.update(endpoints: zip(hosts, [1, 2, 3] as [UInt32]).map { BalancerEndpoint($0, weight: $1) })
    let counts = pickCounts(balancer, count: 6_000)
    #expect(counts == [hosts[0]: 1_000, hosts[1]: 2_000, hosts[2]: 3_000])
  }

  @Test func unchangedUpdateKeepsTheRotation() {
    let hosts = addresses(4)
    let reference = RoundRobinBalancer()
    let updated = RoundRobinBalancer()
    reference.update(endpoints: endpoints(hosts))
    updated.update(endpoints: endpoints(hosts))
    var weighted = endpoints(hosts)
    weighted[0].weight = 3
    let weightedReference = RoundRobinBalancer()
    let weightedUpdated = RoundRobinBalancer()
    weightedReference.update(endpoints: weighted)
    weightedUpdated.update(endpoints: weighted)
    for step in 0..<20 {
      if step % 3 == 0 {
        updated.update(endpoints: endpoints(hosts))
        weightedUpdated.update(endpoints: weighted)
      }
      #expect(updated.pick(.none, now: 0) == reference.pick(.none, now: 0))
      #expect(weightedUpdated.pick(.none, now: 0) == weightedReference.pick(.none, now: 0))
    }
  }

  @Test func skipsUnhealthyAndResumesWhenItRecovers() {
    let hosts = addresses(3)
    var set = endpoints(hosts)
    set[1].isHealthy = false
    let balancer = RoundRobinBalancer()
    balancer.update(endpoints: set)
    #expect(pickCounts(balancer, count: 100) == [hosts[0]: 50, hosts[2]: 50])
    set[1].isHealthy = true
    balancer.update(endpoints: set)
    #expect(pickCounts(balancer, count: 99) == [hosts[0]: 33, hosts[1]: 33, hosts[2]: 33])
  }
}
