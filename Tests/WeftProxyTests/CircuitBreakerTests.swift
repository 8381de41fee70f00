import Testing
import WeftModel
import WeftWire

@testable import WeftProxy

@Suite("resilience: circuit breakers fail fast and name the limit")
struct CircuitBreakerTests {
  let vip = IPv4Address("100.64.0.7")!.value

  func table(_ limits: CircuitBreakerSpec, retries: RouteRetries? = nil) -> ServiceTable {
    let table = ServiceTable()
    let endpoints = ["100.96.2.2", "100.96.2.3"]
    table.apply(
      ProxySnapshot(
        version: 1,
        services: [
          ProxyService(
            name: "backend", vip: "100.64.0.7", ports: [ServicePort(port: 80, protocol: .http)],
            balancer: ServiceBalancing(), endpoints: endpoints,
            routes: retries.map {
              [
                ProxyRouteRule(
                  name: "all", backends: [ProxyBackend(weight: 1, endpoints: endpoints)], retries: $0)
              ]
            },
            circuitBreakers: limits)
        ]))
    return table
  }

  let request = RequestView(method: "GET", target: "/", header: { _ in nil })

  @Test func requestsOverTheLimitOverflowUntilOneFinishes() {
    let table = table(CircuitBreakerSpec(maxRequests: 3))
    var open: [Upstream] = []
    for _ in 0..<3 {
      guard case .service(let upstream) = table.decide(address: vip, port: 80, request: request, now: 0)
      else {
        Issue.record("refused under the limit")
        return
      }
      open.append(upstream)
    }
    #expect(
      table.decide(address: vip, port: 80, request: request, now: 0)
        == .overflow(service: "backend", limit: .maxRequests))
    table.finish(open.removeFirst(), now: 1, success: true)
    guard case .service = table.decide(address: vip, port: 80, request: request, now: 2) else {
      Issue.record("a finished request did not give its slot back")
      return
    }
    #expect(table.overflows["backend"]?[.maxRequests] == 1)
  }

  @Test func retriesHaveTheirOwnLimit() {
    let table = table(CircuitBreakerSpec(maxRetries: 1), retries: RouteRetries(attempts: 3))
    var firsts: [Upstream] = []
    for _ in 0..<2 {
      guard case .service(let upstream) = table.decide(address: vip, port: 80, request: request, now: 0)
      else {
        Issue.record("not routed")
        return
      }
      firsts.append(upstream)
    }
    let retry = table.retry(firsts[0], avoiding: [firsts[0].endpoint.ipv4], now: 0)
    #expect(retry?.isRetry == true && retry?.endpoint.ipv4 != firsts[0].endpoint.ipv4)
    #expect(
      table.retry(firsts[1], avoiding: [firsts[1].endpoint.ipv4], now: 0) == nil,
      "the second retry is over the limit")
    #expect(table.overflows["backend"]?[.maxRetries] == 1)
    if let retry { table.finish(retry, now: 1, success: true) }
    #expect(table.retry(firsts[1], avoiding: [firsts[1].endpoint.ipv4], now: 2) != nil, "the slot came back")
  }

  @Test func aRetryKeepsItsRequestsSlot() {
    let table = table(CircuitBreakerSpec(maxRequests: 1), retries: RouteRetries(attempts: 3))
    guard case .service(let first) = table.decide(address: vip, port: 80, request: request, now: 0),
      let retry = table.retry(first, avoiding: [first.endpoint.ipv4], now: 0)
    else {
      Issue.record("not routed or not retried")
      return
    }
    table.finish(first, now: 1, success: false, superseded: true)
    #expect(
      table.decide(address: vip, port: 80, request: request, now: 2)
        == .overflow(service: "backend", limit: .maxRequests), "the request is still in flight, as its retry")
    table.finish(retry, now: 3, success: true)
    guard case .service = table.decide(address: vip, port: 80, request: request, now: 4) else {
      Issue.record("the retry's end did not free the request's slot")
      return
    }
  }

  @Test func theDefaultsAreGenerousAndSaid() {
    let breaker = CircuitBreaker(nil)
    for limit in CircuitBreaker.Limit.allCases {
      #expect(breaker.maximum[limit] == 100_000, "\(limit)")
    }
    #expect(CircuitBreakerSpec(maxRequests: 0).problem?.field == "maxRequests")
    #expect(CircuitBreakerSpec(maxConnections: -1).problem?.field == "maxConnections")
  }

  @Test func connectionsAndPendingRequestsAreLimitedApartFromRequests() {
    let table = table(CircuitBreakerSpec(maxConnections: 2, maxPendingRequests: 1))
    #expect(table.hold(.maxConnections, service: "backend") == nil)
    #expect(table.hold(.maxConnections, service: "backend") == nil)
    #expect(table.hold(.maxConnections, service: "backend") == .maxConnections, "a third connection")
    #expect(table.hold(.maxPendingRequests, service: "backend") == nil)
    #expect(table.hold(.maxPendingRequests, service: "backend") == .maxPendingRequests)
    guard case .service = table.decide(address: vip, port: 80, request: request, now: 0) else {
      Issue.record("requests are not limited by connections")
      return
    }
    table.release(.maxConnections, service: "backend")
    #expect(table.hold(.maxConnections, service: "backend") == nil, "a closed connection gave its slot back")
    #expect(table.overflows["backend"] == [.maxConnections: 1, .maxPendingRequests: 1])
    #expect(table.hold(.maxConnections, service: "nothing") == nil, "no such service: no breaker")
  }

  @Test func newLimitsKeepWhatIsHeld() {
    var breaker = CircuitBreaker(CircuitBreakerSpec(maxConnections: 3))
    for _ in 0..<3 { #expect(breaker.acquire(.maxConnections) == nil) }
    breaker.update(CircuitBreakerSpec(maxConnections: 2))
    #expect(breaker.held[.maxConnections] == 3)
    breaker.release(.maxConnections)
    #expect(breaker.acquire(.maxConnections) == .maxConnections, "two are still held against a limit of two")
    breaker.release(.maxConnections)
    #expect(breaker.acquire(.maxConnections) == nil)
  }
}
