import Testing
import WeftModel
import WeftWire

@testable import WeftProxy

@Suite("sidecar: the routing table from snapshots")
struct ServiceTableTests {
  func snapshot(version: Int, endpoints: [String], policy: BalancerPolicy? = nil) -> ProxySnapshot {
    ProxySnapshot(
      version: version,
      services: [
        ProxyService(
          name: "backend", vip: "100.64.0.1",
          ports: [ServicePort(port: 80, targetPort: 8080, protocol: .http), ServicePort(port: 9000)],
          balancer: ServiceBalancing(policy: policy), endpoints: endpoints)
      ])
  }

  let vip = IPv4Address("100.64.0.1")!.value

  @Test func aServicePortGoesToAnEndpointAtItsTargetPort() {
    let table = ServiceTable()
    table.apply(snapshot(version: 1, endpoints: ["100.96.2.2", "100.96.3.2"]))
    var seen: [String: Int] = [:]
    for _ in 0..<10 {
      guard case .service(let upstream) = table.decide(address: vip, port: 80, now: 0) else {
        Issue.record("not routed to the service")
        return
      }
      #expect(upstream.service == "backend" && upstream.protocol == .http && upstream.endpoint.port == 8080)
      seen[upstream.endpoint.host, default: 0] += 1
    }
    #expect(seen == ["100.96.2.2": 5, "100.96.3.2": 5])
    guard case .service(let other) = table.decide(address: vip, port: 9000, now: 0) else {
      Issue.record("port 9000 not routed")
      return
    }
    #expect(other.endpoint.port == 9000 && other.protocol == .tcp)
  }

  @Test func unhealthyEndpointsGetNoConnections() {
    let table = ServiceTable()
    var s = snapshot(version: 1, endpoints: ["100.96.2.2", "100.96.3.2"])
    s.services[0].unhealthy = ["100.96.2.2"]
    table.apply(s)
    for _ in 0..<6 {
      guard case .service(let upstream) = table.decide(address: vip, port: 80, now: 0) else {
        Issue.record("not routed")
        return
      }
      #expect(upstream.endpoint.host == "100.96.3.2")
    }
    #expect(table.clusters[0].endpoints.map(\.healthy) == [false, true])
    s.services[0].unhealthy = ["100.96.2.2", "100.96.3.2"]
    table.apply(s)
    #expect(table.decide(address: vip, port: 80, now: 0) == .noEndpoint(service: "backend"))
  }

  @Test func anythingElsePassesThroughAndNoEndpointIsSaid() {
    let table = ServiceTable()
    table.apply(snapshot(version: 1, endpoints: []))
    #expect(table.decide(address: vip, port: 81, now: 0) == .passthrough)
    #expect(table.decide(address: vip &+ 1, port: 80, now: 0) == .passthrough)
    #expect(table.decide(address: vip, port: 80, now: 0) == .noEndpoint(service: "backend"))
    #expect(table.version == 1)
  }

  @Test func aNewSnapshotReplacesEndpointsAndKeepsTheBalancerUnlessThePolicyChanges() {
    let table = ServiceTable()
    table.apply(snapshot(version: 1, endpoints: ["100.96.2.2", "100.96.3.2"]))
    table.apply(snapshot(version: 2, endpoints: ["100.96.3.2"]))
    for _ in 0..<4 {
      guard case .service(let upstream) = table.decide(address: vip, port: 80, now: 0) else {
        Issue.record("not routed")
        return
      }
      #expect(upstream.endpoint.host == "100.96.3.2")
    }
    table.apply(snapshot(version: 3, endpoints: ["100.96.2.2"], policy: .leastRequest))
    #expect(table.version == 3)
    guard case .service(let upstream) = table.decide(address: vip, port: 80, now: 0) else {
      Issue.record("not routed")
      return
    }
    #expect(upstream.endpoint.host == "100.96.2.2")
  }

  @Test func snapshotsAreBuiltFromServicesAndMatchingWorkloads() throws {
    var service = try Resource(
      kind: .service, name: "backend",
      spec: ServiceSpec(network: "blue", selector: ["app": "backend"], ports: [ServicePort(port: 80)]))
    service.status = try JSONValue(encoding: ServiceStatus(vip: "100.64.0.7"))
    let pending = try Resource(
      kind: .service, name: "pending",
      spec: ServiceSpec(network: "blue", selector: ["app": "x"], ports: [ServicePort(port: 80)]))
    let w1 = try Resource(
      kind: .workload, name: "w1", labels: ["app": "backend"],
      spec: WorkloadSpec(network: "blue", host: "h1", address: "100.96.1.2"))
    let w2 = try Resource(
      kind: .workload, name: "w2", labels: ["app": "other"],
      spec: WorkloadSpec(network: "blue", host: "h1", address: "100.96.1.3"))
    let snapshot = ProxySnapshot.build(version: 4, from: [service, pending, w1, w2])
    #expect(snapshot.version == 4)
    #expect(snapshot.services.map(\.name) == ["backend"], "a service without a VIP yet is left out")
    #expect(snapshot.services[0].vip == "100.64.0.7")
    #expect(snapshot.services[0].endpoints == ["100.96.1.2"])
  }
}

@Suite("sidecar: admin figures")
struct ProxyMetricsTests {
  @Test func connectionsAreCountedPerEndpointAndRenderedForPrometheus() throws {
    let table = ServiceTable()
    table.apply(
      ProxySnapshot(
        version: 3,
        services: [
          ProxyService(
            name: "backend", vip: "100.64.0.1", ports: [ServicePort(port: 80)], balancer: ServiceBalancing(),
            endpoints: ["100.96.2.2", "100.96.3.2"])
        ]))
    let vip = IPv4Address("100.64.0.1")!.value
    var tokens: [Upstream] = []
    for _ in 0..<4 {
      guard case .service(let upstream) = table.decide(address: vip, port: 80, now: 0) else {
        Issue.record("not routed")
        return
      }
      tokens.append(upstream)
    }
    #expect(table.clusters[0].endpoints.map(\.active) == [2, 2])
    table.finish(tokens[0], now: 1_000, success: true)
    table.finish(tokens[1], now: 1_000, success: false)
    let endpoints = table.clusters[0].endpoints
    #expect(endpoints.map(\.active).reduce(0, +) == 2)
    #expect(endpoints.map(\.completed).reduce(0, +) == 2)
    #expect(endpoints.map(\.failed).reduce(0, +) == 1)
    var counters = SidecarProxy.ProxyCounters()
    counters.outboundToService = 4
    let text = ProxyMetrics.render(counters: counters, clusters: table.clusters, version: table.version)
    #expect(text.contains("weft_proxy_connections_total{direction=\"outbound\",outcome=\"service\"} 4\n"))
    #expect(text.contains("weft_proxy_endpoint_active{service=\"backend\",endpoint=\"100.96.2.2\"} "))
    #expect(text.contains("weft_proxy_snapshot_version 3\n"))
    // Every sample line belongs to a family announced with HELP and TYPE before it.
    var announced: Set<String> = []
    for line in text.split(separator: "\n") {
      if line.hasPrefix("# TYPE ") { announced.insert(String(line.split(separator: " ")[2])) }
      if !line.hasPrefix("#") {
        let name = String(line.prefix { $0 != "{" && $0 != " " })
        #expect(announced.contains(name), "\(line)")
      }
    }
    #expect(ProxyMetrics.escape("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
  }
}

@Suite("sidecar: request figures")
struct TrafficMetricsTests {
  @Test func requestsAreCountedByStatusClassWithAHistogramAndBytes() {
    let metrics = TrafficMetrics(source: "client")
    metrics.request(
      to: "backend", protocol: "http", status: 200, nanoseconds: 400_000, sent: 10, received: 100)
    metrics.request(to: "backend", protocol: "http", status: 204, nanoseconds: 3_000_000)
    metrics.request(to: "backend", protocol: "http", status: 503, nanoseconds: 20_000_000_000)
    metrics.request(to: "backend", protocol: "http", status: nil, nanoseconds: 1_000)
    metrics.connection(to: "db", sent: 5, received: 7)
    metrics.opened("outbound", 1)
    metrics.opened("outbound", 1)
    metrics.opened("outbound", -1)
    let series = metrics.snapshot[TrafficMetrics.Key(destination: "backend", protocol: "http")]
    #expect(series?.requests == ["2xx": 2, "5xx": 1, "error": 1])
    // 0.4 ms and 1 us in the first bucket (<= 0.5 ms), 3 ms in <= 5 ms, 20 s past every bound.
    #expect(series?.buckets[0] == 2 && series?.buckets[3] == 1 && series?.buckets.last == 1)
    let text = metrics.render()
    let base = "source=\"client\",destination=\"backend\",protocol=\"http\""
    #expect(text.contains("weft_proxy_requests_total{\(base),class=\"2xx\"} 2\n"))
    #expect(text.contains("weft_proxy_request_duration_seconds_bucket{\(base),le=\"0.005\"} 3\n"))
    #expect(text.contains("weft_proxy_request_duration_seconds_bucket{\(base),le=\"10.0\"} 3\n"))
    #expect(text.contains("weft_proxy_request_duration_seconds_bucket{\(base),le=\"+Inf\"} 4\n"))
    #expect(text.contains("weft_proxy_request_duration_seconds_count{\(base)} 4\n"))
    #expect(text.contains("weft_proxy_bytes_total{\(base),direction=\"received\"} 100\n"))
    #expect(
      text.contains(
        "weft_proxy_tcp_connections_total{source=\"client\",destination=\"db\",protocol=\"tcp\"} 1\n"))
    #expect(text.contains("weft_proxy_open_connections{source=\"client\",direction=\"outbound\"} 1\n"))
  }
}
