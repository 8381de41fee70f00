import Testing
import WeftModel
import WeftWire

@testable import WeftProxy

@Suite("sidecar: route rules (header matching, weighted subsets)")
struct RouteTableTests {
  let vip = IPv4Address("100.64.0.9")!.value
  let v1 = ["100.96.2.2", "100.96.3.2"]
  let v2 = ["100.96.3.3"]

  func table(_ rules: [ProxyRouteRule]) -> ServiceTable {
    let table = ServiceTable()
    table.apply(
      ProxySnapshot(
        version: 1,
        services: [
          ProxyService(
            name: "backend", vip: "100.64.0.9",
            ports: [ServicePort(port: 80, targetPort: 8080, protocol: .http), ServicePort(port: 9000)],
            balancer: ServiceBalancing(), endpoints: v1 + v2, routes: rules)
        ]))
    return table
  }

  func request(_ headers: [String: String] = [:], method: String = "GET", target: String = "/")
    -> RequestView
  {
    RequestView(method: method, target: target, header: { headers[$0] })
  }

  func host(_ decision: OutboundDecision) -> String? {
    guard case .service(let upstream) = decision else { return nil }
    return upstream.endpoint.host
  }

  var canary: [ProxyRouteRule] {
    [
      ProxyRouteRule(
        name: "testers", match: RouteMatch(headers: ["X-Canary": "yes"]),
        backends: [ProxyBackend(subset: ["version": "v2"], weight: 1, endpoints: v2)]),
      ProxyRouteRule(
        name: "split",
        backends: [
          ProxyBackend(subset: ["version": "v1"], weight: 90, endpoints: v1),
          ProxyBackend(subset: ["version": "v2"], weight: 10, endpoints: v2),
        ]),
    ]
  }

  @Test func aNinetyTenSplitIsExactAndInterleaved() {
    let table = table(canary)
    var v2Picks: [Int] = []
    for i in 0..<2000 {
      let host = host(table.decide(address: vip, port: 80, request: request(), now: 0))
      if host == v2[0] { v2Picks.append(i) }
    }
    #expect(v2Picks.count == 200)
    // Smooth weighting: one v2 pick in every 10, never two in a row.
    #expect(zip(v2Picks, v2Picks.dropFirst()).allSatisfy { $1 - $0 == 10 })
    let backends = table.clusters[0].routes ?? []
    #expect(backends.map(\.picked) == [0, 1800, 200])
    #expect(backends.map(\.rule) == ["testers", "split", "split"])
  }

  @Test func headerMatchIsExactAndCaseBlindInTheName() {
    let table = table(canary)
    for _ in 0..<20 {
      #expect(
        host(table.decide(address: vip, port: 80, request: request(["x-canary": "yes"]), now: 0)) == v2[0])
    }
    let near = [["x-canary": "Yes"], ["x-canary": "yes "], ["x-canary-2": "yes"]]
    var counts: [String: Int] = [:]
    for headers in near {
      for _ in 0..<10 {
        counts[
          host(table.decide(address: vip, port: 80, request: request(headers), now: 0)) ?? "none", default: 0] +=
          1
      }
    }
    #expect(counts[v2[0]] == 3, "near misses fall through to the 90/10 split")
  }

  @Test func pathAndMethodMatches() {
    let match = RouteMatch(pathPrefix: "/api/", method: "POST")
    #expect(match.matches(method: "POST", target: "/api/x?y=1", header: { _ in nil }))
    #expect(!match.matches(method: "GET", target: "/api/x", header: { _ in nil }))
    #expect(!match.matches(method: "POST", target: "/apix", header: { _ in nil }))
    let exact = RouteMatch(path: "/login")
    #expect(exact.matches(method: "GET", target: "/login?next=/", header: { _ in nil }))
    #expect(!exact.matches(method: "GET", target: "/login/", header: { _ in nil }))
  }

  @Test func opaqueConnectionsSkipHTTPRulesButFollowPlainSplits() {
    let onlyHTTP = table([
      ProxyRouteRule(
        match: RouteMatch(headers: ["x-canary": "yes"]),
        backends: [ProxyBackend(weight: 1, endpoints: v2)])
    ])
    var seen: Set<String> = []
    for _ in 0..<6 { seen.insert(host(onlyHTTP.decide(address: vip, port: 9000, now: 0)) ?? "none") }
    #expect(seen == Set(v1 + v2), "no rule applies: the whole service")
    let split = table([ProxyRouteRule(backends: [ProxyBackend(weight: 1, endpoints: v2)])])
    for _ in 0..<6 { #expect(host(split.decide(address: vip, port: 9000, now: 0)) == v2[0]) }
  }

  @Test func anEmptyOrUnhealthySubsetIsRefusedNotSpilled() {
    let table = table([
      ProxyRouteRule(backends: [ProxyBackend(subset: ["version": "v3"], weight: 1, endpoints: [])])
    ])
    #expect(
      table.decide(address: vip, port: 80, request: request(), now: 0) == .noEndpoint(service: "backend"))
  }

  @Test func finishingCountsOnTheSubsetsBalancer() {
    let table = table(canary)
    guard
      case .service(let upstream) = table.decide(
        address: vip, port: 80, request: request(["x-canary": "yes"]), now: 0)
    else {
      Issue.record("not routed")
      return
    }
    #expect(upstream.rule == "testers")
    #expect(table.clusters[0].routes?[0].endpoints[0].active == 1)
    table.finish(upstream, now: 10, success: true)
    #expect(table.clusters[0].routes?[0].endpoints[0].active == 0)
    #expect(table.clusters[0].routes?[0].endpoints[0].completed == 1)
  }

  @Test func snapshotsResolveSubsetsFromWorkloadLabels() throws {
    var service = try Resource(
      kind: .service, name: "backend",
      spec: ServiceSpec(network: "blue", selector: ["app": "backend"], ports: [ServicePort(port: 80)]))
    service.status = try JSONValue(encoding: ServiceStatus(vip: "100.64.0.7"))
    let workloads = try [("a", "v1", "100.96.1.2"), ("b", "v2", "100.96.1.3"), ("c", "v1", "100.96.1.4")].map
    {
      try Resource(
        kind: .workload, name: $0.0, labels: ["app": "backend", "version": $0.1],
        spec: WorkloadSpec(network: "blue", host: "h1", address: $0.2))
    }
    let route = try Resource(
      kind: .route, name: "backend",
      spec: RouteSpec(
        service: "backend",
        rules: [
          RouteRule(
            backends: [
              RouteBackend(subset: ["version": "v1"], weight: 90),
              RouteBackend(subset: ["version": "v2"], weight: 10),
            ])
        ]))
    let snapshot = ProxySnapshot.build(version: 1, from: [service, route] + workloads)
    let backends = snapshot.services[0].routes?[0].backends ?? []
    #expect(backends.map(\.endpoints) == [["100.96.1.2", "100.96.1.4"], ["100.96.1.3"]])
    #expect(backends.map(\.weight) == [90, 10])
  }
}

@Suite("sidecar: fault injection by route rules")
struct RouteFaultTests {
  let vip = IPv4Address("100.64.0.9")!.value

  func table(_ fault: RouteFault) -> ServiceTable {
    let table = ServiceTable()
    table.apply(
      ProxySnapshot(
        version: 1,
        services: [
          ProxyService(
            name: "backend", vip: "100.64.0.9",
            ports: [ServicePort(port: 80, protocol: .http), ServicePort(port: 9000)],
            balancer: ServiceBalancing(),
            endpoints: ["100.96.2.2"],
            routes: [
              ProxyRouteRule(backends: [ProxyBackend(weight: 1, endpoints: ["100.96.2.2"])], fault: fault)
            ])
        ]))
    return table
  }

  @Test func abortsAndDelaysHitTheirExactShareOfHTTPRequests() {
    let table = table(
      RouteFault(delay: .init(milliseconds: 7, percent: 10), abort: .init(status: 503, percent: 5)))
    var aborted = 0
    var delayed = 0
    var abortPositions: [Int] = []
    for i in 0..<4000 {
      switch table.decide(
        address: vip, port: 80, request: RequestView(method: "GET", target: "/", header: { _ in nil }), now: 0
      )
      {
      case .abort(let service, let status):
        #expect(service == "backend" && status == 503)
        aborted += 1
        abortPositions.append(i)
      case .service(let upstream):
        if upstream.delayNanos == 7_000_000 { delayed += 1 }
        table.finish(upstream, now: 0, success: true)
      default:
        Issue.record("unexpected decision")
      }
    }
    #expect(aborted == 200, "5% of 4000")
    #expect(delayed == 380, "10% of the 3800 that were sent on")
    #expect(zip(abortPositions, abortPositions.dropFirst()).allSatisfy { $1 - $0 == 20 }, "evenly spread")
  }

  @Test func opaqueConnectionsGetNoFaults() {
    let table = table(RouteFault(abort: .init(status: 503, percent: 100)))
    for _ in 0..<10 {
      guard case .service = table.decide(address: vip, port: 9000, now: 0) else {
        Issue.record("a TCP connection was faulted")
        return
      }
    }
  }

  @Test func shareCountersAreExact() {
    var counter = ShareCounter()
    #expect((0..<1000).count(where: { _ in counter.next(percent: 12.5) }) == 125)
  }
}
