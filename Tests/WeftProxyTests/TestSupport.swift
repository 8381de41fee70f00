import WeftModel

@testable import WeftProxy

/// Endpoint `10.0.0.<i+1>:8080` for `i` in `0..<count`.
func addresses(_ count: Int, subnet: UInt8 = 0) -> [EndpointAddress] {
  (0..<count).map { EndpointAddress(10, subnet, UInt8($0 / 250), UInt8($0 % 250 + 1), port: 8080) }
}

/// Healthy endpoints of weight 1 at `addresses`.
func endpoints(_ addresses: [EndpointAddress]) -> [BalancerEndpoint] {
  addresses.map { BalancerEndpoint($0) }
}

/// A fresh balancer of each policy, seeded.
func everyBalancer(seed: UInt64 = 42) -> [any LoadBalancer] {
  BalancerPolicy.allCases.map {
    BalancerConfiguration(policy: $0).makeLoadBalancer(random: SplitMix64(seed: seed))
  }
}

/// Counts the picks of `count` requests without starting them.
func pickCounts(
  _ balancer: any LoadBalancer, count: Int, context: (Int) -> PickContext = { _ in .none }
) -> [EndpointAddress: Int] {
  var counts: [EndpointAddress: Int] = [:]
  for i in 0..<count {
    if let address = balancer.pick(context(i), now: 0) { counts[address, default: 0] += 1 }
  }
  return counts
}

/// Open-loop traffic: one request every `intervalNanos`; the endpoint at an address answers after
/// `latency(address)` nanoseconds. Returns how many requests each endpoint got.
func simulate(
  _ balancer: any LoadBalancer, requests: Int, intervalNanos: UInt64,
  latency: (EndpointAddress) -> UInt64
) -> [EndpointAddress: Int] {
  var counts: [EndpointAddress: Int] = [:]
  var inFlight: [(finishAt: UInt64, token: RequestToken)] = []
  var now: UInt64 = 1_000_000_000
  for _ in 0..<requests {
    // `inFlight` stays sorted by finish time, latest first, so the earliest finish is last.
    while let last = inFlight.last, last.finishAt <= now {
      balancer.finish(last.token, now: last.finishAt, success: true)
      inFlight.removeLast()
    }
    if let token = balancer.begin(.none, now: now) {
      counts[token.address, default: 0] += 1
      let finishAt = now + latency(token.address)
      let position = inFlight.firstIndex { $0.finishAt <= finishAt } ?? inFlight.endIndex
      inFlight.insert((finishAt, token), at: position)
    }
    now += intervalNanos
  }
  return counts
}

/// A table with one service (`http` unless told), `name`, at 100.64.0.9:80, whose one endpoint
/// is this host's loopback on `targetPort` (for forwarder tests against a local endpoint).
func loopbackServiceTable(
  _ name: String, targetPort: Int, protocol: ServiceProtocol = .http
) -> ServiceTable {
  let table = ServiceTable()
  table.apply(
    ProxySnapshot(
      version: 1,
      services: [
        ProxyService(
          name: name, vip: "100.64.0.9",
          ports: [ServicePort(port: 80, targetPort: targetPort, protocol: `protocol`)],
          balancer: ServiceBalancing(), endpoints: ["127.0.0.1"])
      ]))
  return table
}
