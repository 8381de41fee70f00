import Testing

@testable import WeftProxy

@Suite struct PeakEWMABalancerTests {
  @Test func slowEndpointGetsClearlyLess() {
    let hosts = addresses(4)
    let balancer = PeakEWMABalancer(random: SplitMix64(seed: 1))
    balancer.update(endpoints: endpoints(hosts))
    // One request per millisecond for 20 s; hosts[0] takes 50 ms, the others 5 ms.
    let counts = simulate(balancer, requests: 20_000, intervalNanos: 1_000_000) {
      $0 == hosts[0] ? 50_000_000 : 5_000_000
    }
    let slow = counts[hosts[0], default: 0]
    // An even share is 5 000; allow a fifth of it (it gets about 200).
    #expect(slow < 1_000, "slow endpoint got \(slow) of 20000")
    for host in hosts.dropFirst() {
      #expect(counts[host, default: 0] > 5_500)
    }
  }

  @Test func recoveredEndpointWinsBackTraffic() {
    let hosts = addresses(3)
    let balancer = PeakEWMABalancer(random: SplitMix64(seed: 2))
    balancer.update(endpoints: endpoints(hosts))
    _ = simulate(balancer, requests: 5_000, intervalNanos: 1_000_000) {
      $0 == hosts[0] ? 100_000_000 : 5_000_000
    }
    // A minute later everything answers in 5 ms: the old peak has decayed away.
    var counts: [EndpointAddress: Int] = [:]
    var now: UInt64 = 70_000_000_000
    for _ in 0..<3_000 {
      let token = balancer.begin(now: now)!
      counts[token.address, default: 0] += 1
      balancer.finish(token, now: now + 5_000_000, success: true)
      now += 6_000_000
    }
    #expect(counts[hosts[0], default: 0] > 600)
  }

  @Test func costCountsRequestsInFlight() {
    let hosts = addresses(2)
    let balancer = PeakEWMABalancer(random: SplitMix64(seed: 3))
    balancer.update(endpoints: endpoints(hosts))
    // Equal latency history (the default guess); hosts[0] has three requests in flight.
    for _ in 0..<3 { _ = balancer.start(hosts[0], now: 0) }
    #expect(pickCounts(balancer, count: 100) == [hosts[1]: 100])
  }

  @Test func peakReplacesAndLowerSamplesBlendOverTime() {
    let tau: UInt64 = 10_000_000_000
    var ewma = PeakEWMA(initialNanos: 30_000_000)
    ewma.observe(rttNanos: 80_000_000, now: 1_000, decayNanos: tau)
    #expect(ewma.estimate == 80_000_000)
    // A sample a time constant later keeps 1/e of the old estimate.
    ewma.observe(rttNanos: 10_000_000, now: 1_000 + tau, decayNanos: tau)
    let expected = 80_000_000 * 0.367_879_441_171_442_3 + 10_000_000 * (1 - 0.367_879_441_171_442_3)
    #expect(abs(ewma.estimate - expected) < 1)
    // Reading decays toward zero.
    let read = ewma.decayed(now: 1_000 + 2 * tau, decayNanos: tau)
    #expect(abs(read - expected * 0.367_879_441_171_442_3) < 1)
  }

  @Test(arguments: [0.0, 1e-9, 0.1, 0.5, 0.693, 1, 2.5, 10, 50, 700])
  func negativeExponentialIsAccurate(_ x: Double) {
    // e^-x by repeated halving-and-squaring of a series, independent of the implementation.
    var reference = 1.0
    var term = 1.0
    let small = x / 1024
    for n in 1...30 {
      term *= -small / Double(n)
      reference += term
    }
    for _ in 0..<10 { reference *= reference }
    let value = negativeExponential(x)
    #expect(abs(value - reference) <= 1e-12 * reference, "\(x): \(value) vs \(reference)")
  }

  @Test func failurePenaltyMakesFastFailuresLookSlow() {
    let hosts = addresses(1)
    let balancer = PeakEWMABalancer(
      random: SplitMix64(seed: 4), rtt: PeakEWMAConfiguration(failurePenaltyNanos: 1_000_000_000))
    balancer.update(endpoints: endpoints(hosts))
    let token = balancer.start(hosts[0], now: 0)!
    balancer.finish(token, now: 1_000, success: false)
    let stats = balancer.stats(for: hosts[0])!
    #expect(stats.rttEstimateNanos == 1_000_000_000)
    #expect(stats.failed == 1 && stats.completed == 1 && stats.outstanding == 0)
  }
}
