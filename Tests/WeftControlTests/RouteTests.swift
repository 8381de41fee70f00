import Testing
import WeftControl
import WeftManifest
import WeftModel

/// A route manifest for service `backend` with the given rules (YAML flow text).
func routeYAML(_ name: String, service: String = "backend", rules: String) -> String {
  "apiVersion: weft/v1\nkind: Route\nmetadata: {name: \(name)}\nspec: {service: \(service), rules: \(rules)}"
}

@Suite("routes: validation and one route per service")
struct RouteTests {
  @Test func badRoutesAreRefusedWithTheFieldNamed() throws {
    let cases: [(String, String)] = [
      ("[]", "spec.rules: must list at least one rule"),
      ("[{backends: []}]", "spec.rules[0].backends: must list at least one backend"),
      ("[{backends: [{weight: 0}]}]", "spec.rules[0].backends: every weight is 0"),
      ("[{backends: [{weight: -1}]}]", "spec.rules[0].backends[0].weight: -1 is outside 0-10000"),
      ("[{backends: [{wieght: 1}]}]", "spec.rules[0].backends[0].wieght: unknown field"),
      ("[{matches: {}, backends: [{}]}]", "spec.rules[0].matches: unknown field"),
      ("[{match: {header: {a: b}}, backends: [{}]}]", "spec.rules[0].match.header: unknown field"),
      (
        "[{match: {pathPrefix: api}, backends: [{}]}]",
        "spec.rules[0].match.pathPrefix: 'api' must start with /"
      ),
      ("[{match: {method: get}, backends: [{}]}]", "spec.rules[0].match.method: 'get' is not a method"),
      (
        "[{match: {headers: {'a b': c}}, backends: [{}]}]",
        "spec.rules[0].match.headers.a b: 'a b' is not a header name"
      ),
      ("[{backends: [{subset: v1}]}]", "spec: field 'rules[0].backends[0].subset'"),
      (
        "[{backends: [{}], fault: {abort: {status: 200, percent: 5}}}]",
        "spec.rules[0].fault.abort.status: 200 is not an error status"
      ),
      (
        "[{backends: [{}], fault: {delay: {milliseconds: 5, percent: 101}}}]",
        "spec.rules[0].fault.delay.percent: 101.0 is outside 0-100"
      ),
      (
        "[{backends: [{}], fault: {abort: {code: 503, percent: 5}}}]",
        "spec.rules[0].fault.abort.code: unknown field"
      ),
      ("[{backends: [{}], fault: {drop: {}}}]", "spec.rules[0].fault.drop: unknown field"),
      ("[{backends: [{}], retries: {attempts: 0}}]", "spec.rules[0].retries.attempts: 0 is outside 1-10"),
      (
        "[{backends: [{}], rateLimit: {requestsPerSecond: -2}}]",
        "spec.rules[0].rateLimit.requestsPerSecond: -2.0 is outside (0, 10000000]"
      ),
      (
        "[{backends: [{}], rateLimit: {requestsPerSecond: 1, perSecond: 2}}]",
        "spec.rules[0].rateLimit.perSecond: unknown field"
      ),
      ("[{backends: [{}], retries: {retryOn: [sometimes]}}]", "spec: field 'rules[0].retries.retryOn[0]'"),
      ("[{backends: [{}], retries: {tries: 3}}]", "spec.rules[0].retries.tries: unknown field"),
      (
        "[{backends: [{}], retries: {retriableStatusCodes: [200]}}]",
        "spec.rules[0].retries.retriableStatusCodes: 200 is not an error status"
      ),
      (
        "[{backends: [{}], timeoutMilliseconds: 0}]",
        "spec.rules[0].timeoutMilliseconds: 0 is outside 1-3600000"
      ),
    ]
    for (rules, expected) in cases {
      let error = problem(routeYAML("r", rules: rules))
      #expect(error?.contains(expected) == true, "\(rules): \(error ?? "accepted")")
    }
    #expect(
      problem(routeYAML("r", service: "Back_end", rules: "[{backends: [{}]}]"))?.contains("spec.service")
        == true)
    let good = try Manifest.parse(
      routeYAML(
        "r",
        rules:
          "[{name: testers, match: {headers: {x-canary: 'yes'}}, backends: [{subset: {version: v2}}]}, {backends: [{subset: {version: v1}, weight: 90}, {subset: {version: v2}, weight: 10}]}]"
      ))[0]
    try Validation.validate(good)
    let spec = try good.decodeSpec(RouteSpec.self)
    #expect(spec.rules.count == 2)
    #expect(spec.rules[0].match?.headers == ["x-canary": "yes"])
    #expect(spec.rules[1].backends.map(\.effectiveWeight) == [90, 10])
  }

  @Test func aRouteNeedsItsServiceAndIsTheOnlyOneForIt() async throws {
    let controller = try makeController()
    _ = try await controller.apply(try Manifest.parse(networksYAML))
    let missing = await #expect(throws: ValidationError.self) {
      try await controller.apply(try Manifest.parse(routeYAML("r1", rules: "[{backends: [{}]}]")))
    }
    #expect(missing?.description == "Route/r1: spec.service: no service 'backend'")
    _ = try await controller.apply(try Manifest.parse(serviceYAML("backend")))
    _ = try await controller.apply(try Manifest.parse(routeYAML("r1", rules: "[{backends: [{}]}]")))
    _ = try await controller.apply(try Manifest.parse(routeYAML("r1", rules: "[{backends: [{weight: 2}]}]")))
    let second = await #expect(throws: ValidationError.self) {
      try await controller.apply(try Manifest.parse(routeYAML("r2", rules: "[{backends: [{}]}]")))
    }
    #expect(second?.description.contains("already has route r1") == true)
    #expect(try await controller.store.list(.route).resources.count == 1)
    _ = try await controller.delete(ResourceKey(kind: .service, name: "backend"))
    #expect(try await controller.store.list(.route).resources.isEmpty, "the route went with its service")
  }
}
