import Testing
import WeftModel
import WeftWire

@testable import WeftProxy

@Suite("resilience: the routing table ejects outliers and panics when too few are left")
struct OutlierPoolTests {
  let vip = IPv4Address("100.64.0.5")!.value
  let ms: UInt64 = 1_000_000

  func table(_ spec: OutlierDetectionSpec, endpoints: [String] = ["100.96.2.2", "100.96.2.3", "100.96.2.4"])
    -> ServiceTable
  {
    let table = ServiceTable()
    table.apply(
      ProxySnapshot(
        version: 1,
        services: [
          ProxyService(
            name: "backend", vip: "100.64.0.5", ports: [ServicePort(port: 80, protocol: .http)],
            balancer: ServiceBalancing(), endpoints: endpoints, outlierDetection: spec)
        ]), now: 0)
    return table
  }

  /// Sends `n` requests at `now`; `status` answers for each endpoint. Returns picks per endpoint.
  func send(_ table: ServiceTable, _ n: Int, now: UInt64, status: (String) -> Int) -> [String: Int] {
    var picks: [String: Int] = [:]
    for _ in 0..<n {
      guard case .service(let upstream) = table.decide(address: vip, port: 80, now: now) else { continue }
      let host = upstream.endpoint.host
      picks[host, default: 0] += 1
      let code = status(host)
      table.finish(upstream, now: now, success: true, outcome: RequestOutcome(status: code))
    }
    return picks
  }

  @Test func aFailingEndpointIsEjectedAtItsCountAndComesBackAfterItsTime() {
    let table = table(OutlierDetectionSpec(consecutive5xx: 3, baseEjectionMilliseconds: 1000))
    let bad = "100.96.2.2"
    let first = send(table, 30, now: 0) { $0 == bad ? 503 : 200 }
    #expect(first[bad] == 3, "exactly three failures reach it before it is out: \(first)")
    #expect(first.values.reduce(0, +) == 30)
    let status = table.clusters(now: 1)[0].endpoints.first { $0.address == bad }
    #expect(status?.ejected == true && status?.ejections == 1 && status?.healthy == false)
    #expect(send(table, 10, now: 999 * ms) { _ in 200 }[bad] == nil, "still out just before its time ends")
    #expect((send(table, 9, now: 1000 * ms) { _ in 200 }[bad] ?? 0) > 0, "back, probed by real traffic")
  }

  @Test func panicModeBalancesOverEveryEndpointWhenTooFewAreLeft() {
    // Every endpoint may be ejected (100%), panic below 50% usable: with two of three out, the
    // third alone is 33%, so all three get traffic again.
    let table = table(
      OutlierDetectionSpec(consecutive5xx: 1, maxEjectionPercent: 100, panicThresholdPercent: 50))
    _ = send(table, 4, now: 0) { $0 == "100.96.2.4" ? 200 : 500 }
    #expect(table.clusters(now: 1)[0].panic == true)
    let spread = send(table, 30, now: 1) { _ in 200 }
    #expect(spread.count == 3, "panic: all endpoints get requests: \(spread)")
  }
}
