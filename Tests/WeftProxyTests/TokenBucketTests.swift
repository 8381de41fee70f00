import Testing
import WeftModel
import WeftWire

@testable import WeftProxy

@Suite("resilience: local rate limits and deadlines against a fake clock")
struct TokenBucketTests {
  let ms: UInt64 = 1_000_000

  @Test func aBucketAdmitsItsBurstThenItsRate() {
    var bucket = TokenBucket(RateLimitSpec(requestsPerSecond: 10, burst: 3))
    for _ in 0..<3 { #expect(bucket.take(now: 0) == nil) }
    #expect(bucket.take(now: 0) == 100 * ms, "one token comes every 100 ms")
    #expect(bucket.take(now: 40 * ms) == 60 * ms)
    #expect(bucket.take(now: 100 * ms) == nil)
    // A quiet second refills it to the burst, no more.
    for _ in 0..<3 { #expect(bucket.take(now: 5000 * ms) == nil) }
    #expect(bucket.take(now: 5000 * ms) != nil)
    #expect(bucket.refused == 3)
    // Over ten simulated seconds at 50 requests a second, 10 a second get through (plus the burst).
    var steady = TokenBucket(RateLimitSpec(requestsPerSecond: 10, burst: 3))
    var admitted = 0
    for i in 0..<500 where steady.take(now: UInt64(i) * 20 * ms) == nil { admitted += 1 }
    #expect(admitted == 3 + 99, "\(admitted)")
  }

  @Test func retryAfterIsWholeSecondsRoundedUp() {
    #expect(TokenBucket.retryAfterSeconds(1) == 1)
    #expect(TokenBucket.retryAfterSeconds(1_000_000_000) == 1)
    #expect(TokenBucket.retryAfterSeconds(1_000_000_001) == 2)
    #expect(RateLimitSpec(requestsPerSecond: 0.5).effectiveBurst == 1)
    #expect(RateLimitSpec(requestsPerSecond: 0.5).problem == nil)
  }

  @Test func deadlineHeadersAreReadStrictly() {
    #expect(Deadline.milliseconds("250") == 250)
    #expect(Deadline.milliseconds("0") == 0)
    #expect(Deadline.milliseconds("99999999999") == 3_600_000, "capped at an hour")
    for bad in ["", "-5", "1.5", " 5", "5s", "0x10", "1234567890123"] {
      #expect(Deadline.milliseconds(bad) == nil, "\(bad)")
    }
    #expect(Deadline.value(nanoseconds: 1_999_999) == "1")
    #expect(Deadline.tighter(5, nil) == 5 && Deadline.tighter(nil, 7) == 7 && Deadline.tighter(9, 4) == 4)
    #expect(Deadline.tighter(nil, nil) == nil)
  }

  func table(service: RateLimitSpec?, route: RateLimitSpec?) -> ServiceTable {
    let table = ServiceTable()
    let endpoints = ["100.96.2.2", "100.96.2.3"]
    table.apply(
      ProxySnapshot(
        version: 1,
        services: [
          ProxyService(
            name: "backend", vip: "100.64.0.7",
            ports: [ServicePort(port: 80, targetPort: 8080, protocol: .http)],
            balancer: ServiceBalancing(), endpoints: endpoints,
            routes: [
              ProxyRouteRule(
                name: "writes", match: RouteMatch(method: "POST"),
                backends: [ProxyBackend(weight: 1, endpoints: endpoints)], rateLimit: route)
            ],
            rateLimit: service)
        ]),
      now: 0)
    return table
  }

  func request(_ method: String) -> RequestView {
    RequestView(method: method, target: "/", header: { _ in nil })
  }

  @Test func inboundRequestsTakeFromTheServiceAndTheMatchingRule() {
    let table = table(
      service: RateLimitSpec(requestsPerSecond: 1, burst: 3),
      route: RateLimitSpec(requestsPerSecond: 1, burst: 1))
    #expect(table.admit(service: "backend", request: request("POST"), now: 0) == nil)
    let refused = table.admit(service: "backend", request: request("POST"), now: 0)
    #expect(refused?.route == "writes" && refused?.wait == 1_000 * ms, "the rule's bucket is empty")
    // The refused POST gave the service's token back: two GETs still pass, the third does not.
    #expect(table.admit(service: "backend", request: request("GET"), now: 0) == nil)
    #expect(table.admit(service: "backend", request: request("GET"), now: 0) == nil)
    let third = table.admit(service: "backend", request: request("GET"), now: 0)
    #expect(third != nil && third?.route == nil)
    #expect(table.rateLimited == ["backend": 1, "backend/writes": 1])
    #expect(table.admit(service: "other", request: nil, now: 0) == nil, "no limit, no refusal")
  }

  @Test func aBucketSurvivesSnapshotsThatKeepItsLimit() {
    let table = table(service: RateLimitSpec(requestsPerSecond: 1, burst: 1), route: nil)
    #expect(table.admit(service: "backend", request: nil, now: 0) == nil)
    table.apply(table.snapshot, now: 1)
    #expect(table.admit(service: "backend", request: nil, now: 2) != nil, "the spent token stays spent")
  }

  @Test func inboundConnectionsFindTheirServiceByTargetPort() {
    let table = table(service: nil, route: nil)
    let endpoint = IPv4Address("100.96.2.3")!.value
    #expect(table.inboundService(address: endpoint, port: 8080)?.service == "backend")
    #expect(table.inboundService(address: endpoint, port: 80) == nil, "the VIP port is not the target port")
    #expect(table.inboundService(address: IPv4Address("100.96.2.9")!.value, port: 8080) == nil)
    // Two services on one port: the calling sidecar's x-weft-service header picks, else the
    // first by name; an HTTP declaration makes the port HTTP.
    let shared = ServiceTable()
    shared.apply(
      ProxySnapshot(
        version: 1,
        services: [
          ProxyService(
            name: "a-raw", vip: "100.64.0.8", ports: [ServicePort(port: 1, targetPort: 8080, protocol: .tcp)],
            balancer: ServiceBalancing(), endpoints: ["100.96.2.3"]),
          ProxyService(
            name: "b-web", vip: "100.64.0.9",
            ports: [ServicePort(port: 2, targetPort: 8080, protocol: .http)],
            balancer: ServiceBalancing(), endpoints: ["100.96.2.3"]),
        ]))
    let plain = shared.inboundService(address: endpoint, port: 8080)
    #expect(plain?.service == "a-raw" && plain?.protocol == .http)
    #expect(shared.inboundService(address: endpoint, port: 8080, named: "b-web")?.service == "b-web")
    #expect(shared.inboundService(address: endpoint, port: 8080, named: "nope")?.service == "a-raw")
  }
}
