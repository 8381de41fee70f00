import Hummingbird
import HummingbirdTesting
import Testing
import WeftClient
import WeftControl
import WeftManifest
import WeftModel
import WeftWire

/// A service manifest on network blue selecting `app: backend`, with extra spec lines.
func serviceYAML(_ name: String, _ extra: String = "") -> String {
  """
  apiVersion: weft/v1
  kind: Service
  metadata: {name: \(name)}
  spec:
    network: blue
    selector: {app: backend}
    ports: [{port: 8080, protocol: http}]
  \(extra)
  """
}

/// A workload on blue/host1 with labels and an address.
func workload(_ name: String, labels: [String: String], address: String?, network: String = "blue") throws
  -> Resource
{
  try Resource(
    kind: .workload, name: name, labels: labels,
    spec: WorkloadSpec(network: network, host: "host1", address: address))
}

/// What parsing and validating a manifest's first document says is wrong, or nil.
func problem(_ text: String) -> String? {
  do {
    try Validation.validate(try Manifest.parse(text)[0])
    return nil
  } catch {
    return "\(error)"
  }
}

@Suite("services: validation, virtual IPs, endpoints")
struct ServiceTests {
  @Test func servicesGetStableDistinctVirtualIPs() async throws {
    let controller = try makeController()
    _ = try await controller.apply(try Manifest.parse(networksYAML))
    let a = try await controller.apply(try Manifest.parse(serviceYAML("alpha")))[0]
    let b = try await controller.apply(try Manifest.parse(serviceYAML("beta")))[0]
    #expect(try a.decodeStatus(ServiceStatus.self)?.vip == "100.64.0.1")
    #expect(try b.decodeStatus(ServiceStatus.self)?.vip == "100.64.0.2")
    // Applying again keeps the VIP; a VIP asked for is given; one taken is refused by name.
    let again = try await controller.apply(try Manifest.parse(serviceYAML("alpha")))[0]
    #expect(try again.decodeStatus(ServiceStatus.self)?.vip == "100.64.0.1")
    let asked = try await controller.apply(try Manifest.parse(serviceYAML("gamma", "  vip: 100.64.9.9")))[0]
    #expect(try asked.decodeStatus(ServiceStatus.self)?.vip == "100.64.9.9")
    let error = await #expect(throws: ValidationError.self) {
      try await controller.apply(try Manifest.parse(serviceYAML("delta", "  vip: 100.64.0.2")))
    }
    #expect(error?.description == "Service/delta: spec.vip: 100.64.0.2 is taken by service beta")
    // A freed VIP is reused; deleting the network takes its services along.
    _ = try await controller.delete(ResourceKey(kind: .service, name: "alpha"))
    let epsilon = try await controller.apply(try Manifest.parse(serviceYAML("epsilon")))[0]
    #expect(try epsilon.decodeStatus(ServiceStatus.self)?.vip == "100.64.0.1")
    _ = try await controller.delete(ResourceKey(kind: .network, name: "blue"))
    #expect(try await controller.store.list(.service).resources.isEmpty)
  }

  @Test func badServicesAreRefusedWithTheFieldNamed() throws {
    let cases: [(String, String)] = [
      ("  balancer: {policy: fastest}", "spec: field 'balancer.policy'"),
      (
        "  balancer: {policy: round_robin, hashKey: {header: x-user}}",
        "spec.balancer.hashKey: applies to policy ring_hash only"
      ),
      ("  balancer: {polcy: ewma}", "spec.balancer.polcy: unknown field"),
      ("  vip: 10.0.0.1", "spec.vip: '10.0.0.1' is not an address in 100.64.0.0/16"),
      ("  vip: 100.64.0.0", "spec.vip: 100.64.0.0 is the range's network address"),
      ("  selectr: {}", "spec.selectr: unknown field"),
      ("  healthCheck: {path: healthz}", "spec.healthCheck.path: 'healthz' must start with /"),
      ("  healthCheck: {intervalSeconds: 0}", "spec.healthCheck.intervalSeconds: 0 is outside 1-300"),
      (
        "  healthCheck: {timeoutMilliseconds: 5}",
        "spec.healthCheck.timeoutMilliseconds: 5 is outside 10-60000"
      ),
      ("  healthCheck: {interval: 5}", "spec.healthCheck.interval: unknown field"),
    ]
    for (extra, expected) in cases {
      let error = problem(serviceYAML("s", extra))
      #expect(error?.contains(expected) == true, "\(extra): \(error ?? "accepted")")
    }
    func spec(_ ports: String, selector: String = "{app: backend}") -> String {
      "apiVersion: weft/v1\nkind: Service\nmetadata: {name: s}\nspec: {network: blue, selector: \(selector), ports: \(ports)}"
    }
    let specs: [(String, String)] = [
      (spec("[]"), "spec.ports: must list at least one port"),
      (spec("[{port: 0}]"), "spec.ports[0].port: 0 is not a port"),
      (spec("[{port: 80, targetPort: 70000}]"), "spec.ports[0].targetPort: 70000 is not a port"),
      (spec("[{port: 80}, {port: 80}]"), "spec.ports[1].port: 80 is listed twice"),
      (
        spec("[{port: 80, name: web}, {port: 81, name: web}]"),
        "spec.ports[1].name: 'web' is used by two ports"
      ),
      (spec("[{port: 80, proto: tcp}]"), "spec.ports[0].proto: unknown field"),
      (spec("[{port: 80, protocol: quic}]"), "spec: field 'ports[0].protocol'"),
      (spec("[{port: 80}]", selector: "{}"), "spec.selector: must name at least one workload label"),
    ]
    for (text, expected) in specs {
      let error = problem(text)
      #expect(error?.contains(expected) == true, "\(text): \(error ?? "accepted")")
    }
    // A good one, with every field.
    let good = try Manifest.parse(
      serviceYAML("s", "  balancer: {policy: ring_hash, hashKey: {cookie: session}}\n  vip: 100.64.1.1"))[0]
    try Validation.validate(good)
    let spec = try good.decodeSpec(ServiceSpec.self)
    #expect(spec.balancer == ServiceBalancing(policy: .ringHash, hashKey: .cookie("session")))
    #expect(spec.ports == [ServicePort(port: 8080, protocol: .http)])
  }

  @Test func endpointsAreTheMatchingWorkloadsWithAddresses() async throws {
    let controller = try makeController()
    _ = try await controller.apply(try Manifest.parse(networksYAML))
    _ = try await controller.join(host: "host1", spec: HostSpec(underlay: "198.18.0.1"))
    _ = try await controller.apply(try Manifest.parse(serviceYAML("backend")))
    _ = try await controller.apply([
      try workload("b2", labels: ["app": "backend", "version": "v2"], address: "100.96.1.3"),
      try workload("b1", labels: ["app": "backend", "version": "v1"], address: "100.96.1.2"),
      try workload("pending", labels: ["app": "backend"], address: nil),
      try workload("front", labels: ["app": "frontend"], address: "100.96.1.4"),
      try workload("other-net", labels: ["app": "backend"], address: "100.97.1.2", network: "red"),
    ])
    try await makeApp(controller).test(.live) { server in
      let client = ControlClient(baseURL: "http://127.0.0.1:\(server.port!)", token: "s3cret")
      let endpoints = try await client.endpoints(of: "backend")
      #expect(endpoints.map(\.workload) == ["b1", "b2"])
      #expect(endpoints.map(\.address) == ["100.96.1.2", "100.96.1.3"])
      #expect(endpoints[1].labels["version"] == "v2")
      #expect(endpoints.allSatisfy { $0.healthy }, "unchecked endpoints count as healthy")
      // An agent's finding shows in the endpoints; reporting the same again changes nothing.
      let reported = try await client.reportHealth(workload: "b2", service: "backend", healthy: false)
      let again = try await client.reportHealth(workload: "b2", service: "backend", healthy: false)
      #expect(again.metadata.revision == reported.metadata.revision)
      let health = try await client.endpoints(of: "backend").map(\.healthy)
      #expect(health == [true, false])
      // A workload that goes is no longer an endpoint.
      _ = try await controller.delete(ResourceKey(kind: .workload, name: "b1"))
      #expect(try await client.endpoints(of: "backend").map(\.workload) == ["b2"])
      let missing = await #expect(throws: ControlError.self) { try await client.endpoints(of: "nope") }
      #expect(missing?.status == 404)
    }
  }

  @Test func virtualIPsAreAllocatedLowestFirst() {
    let range = IPPrefix("100.64.0.0/30")!
    #expect(Allocators.vip(in: range, taken: []) == IPAddress("100.64.0.1"))
    #expect(Allocators.vip(in: range, taken: [IPAddress("100.64.0.1")!]) == IPAddress("100.64.0.2"))
    #expect(Allocators.vip(in: range, taken: [IPAddress("100.64.0.1")!, IPAddress("100.64.0.2")!]) == nil)
  }
}

@Suite("services: outlier detection settings")
struct OutlierDetectionValidationTests {
  @Test func settingsAreCheckedFieldByField() throws {
    let cases: [(String, String)] = [
      (
        "  outlierDetection: {consecutive5xx: -1}",
        "spec.outlierDetection.consecutive5xx: -1 is outside 0-1000"
      ),
      (
        "  outlierDetection: {maxEjectionPercent: 150}",
        "spec.outlierDetection.maxEjectionPercent: 150 is outside 0-100"
      ),
      ("  outlierDetection: {consecutive5x: 3}", "spec.outlierDetection.consecutive5x: unknown field"),
      (
        "  outlierDetection: {baseEjectionMilliseconds: 5000, maxEjectionMilliseconds: 100}",
        "spec.outlierDetection.maxEjectionMilliseconds: must be at least baseEjectionMilliseconds"
      ),
      ("  circuitBreakers: {maxRequests: 0}", "spec.circuitBreakers.maxRequests: 0 is outside 1-10000000"),
      ("  circuitBreakers: {maxConnection: 5}", "spec.circuitBreakers.maxConnection: unknown field"),
      (
        "  circuitBreakers: {maxPendingRequests: 0}",
        "spec.circuitBreakers.maxPendingRequests: 0 is outside 1-10000000"
      ),
      (
        "  outlierDetection: {successRateStdevFactor: -1}",
        "spec.outlierDetection.successRateStdevFactor: -1.0 is outside 0-100"
      ),
      (
        "  outlierDetection: {successRateMinimumHosts: 0}",
        "spec.outlierDetection.successRateMinimumHosts: 0 is outside 1-10000"
      ),
      (
        "  rateLimit: {requestsPerSecond: 0}",
        "spec.rateLimit.requestsPerSecond: 0.0 is outside (0, 10000000]"
      ),
      ("  rateLimit: {requestsPerSecond: 5, burst: 0}", "spec.rateLimit.burst: 0 is outside 1-10000000"),
      ("  rateLimit: {requestsPerSecond: 5, rps: 5}", "spec.rateLimit.rps: unknown field"),
    ]
    for (extra, expected) in cases {
      let error = problem(serviceYAML("s", extra))
      #expect(error?.contains(expected) == true, "\(extra): \(error ?? "accepted")")
    }
    let good = try Manifest.parse(
      serviceYAML("s", "  outlierDetection: {consecutive5xx: 3, maxEjectionPercent: 34}"))[0]
    try Validation.validate(good)
    let spec = try good.decodeSpec(ServiceSpec.self).outlierDetection?.resolved
    #expect(spec?.consecutive5xx == 3 && spec?.maxEjectionPercent == 34 && spec?.panicThresholdPercent == 50)
    #expect(spec?.successRateStdevFactor == nil && spec?.successRateMinimumHosts == 5)
    let limited = try Manifest.parse(
      serviceYAML("s", "  rateLimit: {requestsPerSecond: 2.5}\n  circuitBreakers: {maxConnections: 4}"))[0]
    try Validation.validate(limited)
    let decoded = try limited.decodeSpec(ServiceSpec.self)
    #expect(decoded.rateLimit?.effectiveBurst == 3, "the burst defaults to the rate rounded up")
    #expect(decoded.circuitBreakers?.maxConnections == 4)
  }
}
