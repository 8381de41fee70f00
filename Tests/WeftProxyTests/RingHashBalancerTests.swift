import Testing

@testable import WeftProxy

@Suite struct RingHashBalancerTests {
  private let keys = (0..<10_000).map { PickContext(hashKey: "user-\($0)") }

  private func owners(_ balancer: RingHashBalancer<SplitMix64>) -> [EndpointAddress?] {
    self.keys.map { balancer.pick($0, now: 0) }
  }

  private func balancer(_ set: [BalancerEndpoint]) -> RingHashBalancer<SplitMix64> {
    let balancer = RingHashBalancer(random: SplitMix64(seed: 7))
    balancer.update(endpoints: set)
    return balancer
  }

  @Test func sameKeySameEndpoint() {
    let balancer = self.balancer(endpoints(addresses(5)))
    let first = self.owners(balancer)
    #expect(!first.contains(nil))
    #expect(self.owners(balancer) == first)
    // Independent of input order and of the instance: another proxy agrees.
    #expect(self.owners(self.balancer(endpoints(addresses(5).reversed()))) == first)
  }

  @Test func keysSpreadOverEndpoints() {
    let hosts = addresses(8)
    let counts = self.owners(self.balancer(endpoints(hosts))).reduce(into: [:]) { $0[$1!, default: 0] += 1 }
    for host in hosts {
      // 1 250 each on average; 128 points per endpoint keep each within about ±30%.
      #expect((850...1_650).contains(counts[host, default: 0]), "\(host): \(counts[host, default: 0])")
    }
  }

  @Test func leavingMovesOnlyItsKeys() {
    let hosts = addresses(10)
    let balancer = self.balancer(endpoints(hosts))
    let before = self.owners(balancer)
    let leaver = hosts[3]
    balancer.update(endpoints: endpoints(hosts.filter { $0 != leaver }))
    let after = self.owners(balancer)
    var moved = 0
    for (old, new) in zip(before, after) {
      if old == leaver {
        #expect(new != leaver)
        moved += 1
      } else {
        #expect(new == old)
      }
    }
    #expect(moved > 0)
  }

  @Test func joiningTakesAboutOneInNPlusOne() {
    let hosts = addresses(11)
    let balancer = self.balancer(endpoints(Array(hosts.prefix(10))))
    let before = self.owners(balancer)
    balancer.update(endpoints: endpoints(hosts))
    let after = self.owners(balancer)
    var moved = 0
    for (old, new) in zip(before, after) where old != new {
      #expect(new == hosts[10])  // a key only ever moves to the newcomer
      moved += 1
    }
    let share = Double(moved) / Double(self.keys.count)
    #expect(share > 0.6 / 11 && share < 1.4 / 11, "moved \(share)")
  }

  @Test func unhealthyKeysMoveAndComeBack() {
    let hosts = addresses(6)
    var set = endpoints(hosts)
    let balancer = self.balancer(set)
    let before = self.owners(balancer)
    set[2].isHealthy = false
    balancer.update(endpoints: set)
    let during = self.owners(balancer)
    for (old, new) in zip(before, during) {
      #expect(new != hosts[2])
      if old != hosts[2] { #expect(new == old) }
    }
    set[2].isHealthy = true
    balancer.update(endpoints: set)
    #expect(self.owners(balancer) == before)
  }

  @Test func weightScalesTheShare() {
    let hosts = addresses(2)
    let balancer = self.balancer([BalancerEndpoint(hosts[0], weight: 3), BalancerEndpoint(hosts[1])])
    let heavy = self.owners(balancer).filter { $0 == hosts[0] }.count
    let share = Double(heavy) / Double(self.keys.count)
    #expect(share > 0.65 && share < 0.85, "share \(share)")
  }

  @Test func requestsWithoutKeySpreadAtRandom() {
    let hosts = addresses(4)
    let counts = pickCounts(self.balancer(endpoints(hosts)), count: 4_000)
    #expect(counts.count == 4)
    #expect(counts.values.allSatisfy { $0 > 600 })
  }

  @Test func sourceAddressIgnoresThePort() {
    let balancer = self.balancer(endpoints(addresses(16)))
    let clients = (1...50).map { EndpointAddress(100, 96, 3, UInt8($0), port: 40_000) }
    for client in clients {
      var other = client
      other.port = 51_234
      #expect(
        balancer.pick(PickContext(sourceAddress: client), now: 0)
          == balancer.pick(PickContext(sourceAddress: other), now: 0))
    }
    let distinct = Set(clients.map { balancer.pick(PickContext(sourceAddress: $0), now: 0) })
    #expect(distinct.count > 8)
  }

  @Test func ringSizeIsCappedAndEveryEndpointKeepsAPoint() {
    let hosts = addresses(3)
    let set = [
      BalancerEndpoint(hosts[0], weight: .max), BalancerEndpoint(hosts[1]), BalancerEndpoint(hosts[2]),
    ]
    let ring = HashRing(
      endpoints: set,
      configuration: RingHashConfiguration(virtualNodesPerWeight: 1_000, maximumRingSize: 4_096))
    #expect(ring.hashes.count <= 4_096 + 3)
    #expect(Set(ring.owners) == [0, 1, 2])
    #expect(ring.hashes == ring.hashes.sorted())
    let balancer = RingHashBalancer(
      configuration: RingHashConfiguration(maximumRingSize: 4_096), random: SplitMix64(seed: 8))
    balancer.update(endpoints: set)
    var unhealthy = set
    unhealthy[0].isHealthy = false
    balancer.update(endpoints: unhealthy)
    #expect(
      Set(pickCounts(balancer, count: 500) { PickContext(hashKey: "\($0)") }.keys) == [hosts[1], hosts[2]])
  }
}
