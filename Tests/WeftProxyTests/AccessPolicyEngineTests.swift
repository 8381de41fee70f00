import Testing
import WeftIdentity
import WeftModel

@testable import WeftProxy

@Suite("access policy: DENY wins, ALLOW in scope is exclusive, the mesh may deny by default")
struct AccessPolicyEngineTests {
  let client = SPIFFEID(uri: "spiffe://weft.test/ns/blue/sa/client")!
  let batch = SPIFFEID(uri: "spiffe://weft.test/ns/jobs/sa/nightly")!

  func request(_ method: String, _ path: String, header: [String: String] = [:]) -> RequestView {
    RequestView(method: method, target: path, header: { header[$0] })
  }

  func engine(_ policies: [(String, AccessPolicySpec)]) -> AccessPolicyEngine {
    AccessPolicyEngine(policies.map { ProxyAccessPolicy(name: $0.0, spec: $0.1) })
  }

  @Test func noPolicyAllowsAndAnAllowPolicyAllowsOnlyWhatItMatches() {
    let open = engine([])
    #expect(open.decide(service: "backend", namespace: "blue", peer: nil, request: nil).allowed)
    let readers = engine([
      (
        "readers",
        AccessPolicySpec(
          service: "backend", action: .allow,
          rules: [
            AccessRule(
              from: AccessSource(identities: ["spiffe://weft.test/ns/blue/sa/client"]),
              to: AccessOperation(methods: ["GET"], paths: ["/api/*"]))
          ])
      )
    ])
    let get = readers.decide(
      service: "backend", namespace: "blue", peer: client, request: request("GET", "/api/x?y=1"))
    #expect(get.allowed && get.policy == "readers" && get.rule == 0)
    for (peer, method, path) in [
      (client, "POST", "/api/x"), (client, "GET", "/other"), (batch, "GET", "/api/x"),
    ] {
      let d = readers.decide(
        service: "backend", namespace: "blue", peer: peer, request: request(method, path))
      #expect(!d.allowed, "\(peer) \(method) \(path)")
      #expect(d.reason.contains("ALLOW policies 'readers' guard backend and none matches"))
    }
    #expect(
      !readers.decide(service: "backend", namespace: "blue", peer: nil, request: request("GET", "/api/x"))
        .allowed)
    #expect(
      readers.decide(service: "other", namespace: "blue", peer: nil, request: nil).allowed, "out of its scope"
    )
    #expect(
      !readers.decide(service: "backend", namespace: "blue", peer: client, request: nil).allowed,
      "TCP has no GET")
  }

  @Test func denyWinsAndErrsOnTheSafeSideForTCP() {
    let policies = engine([
      (
        "all-blue",
        AccessPolicySpec(
          namespace: "blue", action: .allow, rules: [AccessRule(from: AccessSource(namespaces: ["blue"]))])
      ),
      (
        "no-admin",
        AccessPolicySpec(
          service: "backend", action: .deny,
          rules: [AccessRule(to: AccessOperation(paths: ["/admin", "/admin/*"]))])
      ),
      (
        "no-batch",
        AccessPolicySpec(
          mesh: true, action: .deny,
          rules: [AccessRule(from: AccessSource(identities: ["spiffe://weft.test/ns/jobs/*"]))])
      ),
    ])
    #expect(
      policies.decide(service: "backend", namespace: "blue", peer: client, request: request("DELETE", "/x"))
        .allowed)
    let admin = policies.decide(
      service: "backend", namespace: "blue", peer: client, request: request("GET", "/admin/users"))
    #expect(!admin.allowed && admin.policy == "no-admin", "\(admin.reason)")
    let tcp = policies.decide(service: "backend", namespace: "blue", peer: client, request: nil)
    #expect(!tcp.allowed && tcp.policy == "no-admin", "a DENY rule with HTTP conditions refuses TCP")
    #expect(policies.decide(service: "db", namespace: "blue", peer: client, request: nil).allowed)
    let prefix = policies.decide(service: "db", namespace: "blue", peer: batch, request: nil)
    #expect(!prefix.allowed && prefix.policy == "no-batch", "identity prefix")
  }

  @Test func theMeshCanDenyByDefaultAndHeadersMatchExactly() {
    let policies = engine([
      ("default", AccessPolicySpec(mesh: true, defaultAction: .deny)),
      (
        "canary",
        AccessPolicySpec(
          service: "web", action: .allow,
          rules: [AccessRule(to: AccessOperation(headers: ["X-Canary": "yes"]))])
      ),
    ])
    let denied = policies.decide(service: "db", namespace: "blue", peer: client, request: nil)
    #expect(!denied.allowed && denied.policy == "default" && denied.reason.contains("deny by default"))
    #expect(
      policies.decide(
        service: "web", namespace: "blue", peer: nil,
        request: request("GET", "/", header: ["x-canary": "yes"])
      ).allowed)
    #expect(
      !policies.decide(
        service: "web", namespace: "blue", peer: nil,
        request: request("GET", "/", header: ["x-canary": "Yes"])
      ).allowed)
  }

  @Test func globsMatchWholePaths() {
    #expect(
      Glob.matches("/api/*", "/api/") && Glob.matches("/api/*", "/api/a/b") && !Glob.matches("/api/*", "/api")
    )
    #expect(Glob.matches("/v?/items", "/v2/items") && !Glob.matches("/v?/items", "/v10/items"))
    #expect(Glob.matches("/a/*/c", "/a/b/x/c") && !Glob.matches("/a/*/c", "/a/b/c/d"))
    #expect(
      Glob.matches("*", "/anything") && Glob.matches("/exact", "/exact")
        && !Glob.matches("/exact", "/exactly"))
  }

  @Test func badPoliciesNameTheField() {
    #expect(AccessPolicySpec(action: .allow, rules: [AccessRule()]).problem?.field == "spec")
    #expect(
      AccessPolicySpec(service: "a", namespace: "b", action: .allow, rules: [AccessRule()]).problem?.field
        == "spec")
    #expect(AccessPolicySpec(service: "a", action: .allow, rules: []).problem?.field == "spec.rules")
    #expect(AccessPolicySpec(service: "a", defaultAction: .deny).problem?.field == "spec.defaultAction")
    #expect(
      AccessPolicySpec(
        service: "a", action: .deny, rules: [AccessRule(from: AccessSource(identities: ["client"]))]
      ).problem?.field
        == "spec.rules[0].from.identities[0]")
    #expect(
      AccessPolicySpec(service: "a", action: .deny, rules: [AccessRule(to: AccessOperation(paths: ["api"]))])
        .problem?.field
        == "spec.rules[0].to.paths[0]")
    #expect(AccessPolicySpec(mesh: true, defaultAction: .deny).problem == nil)
  }
}

@Suite("access policy: a caller that cannot be trusted to name its service meets every service on the port")
struct SharedPortAccessTests {
  @Test func everyServiceOnThePortMustAllow() {
    let table = ServiceTable()
    let port = ServicePort(port: 80, targetPort: 8080, protocol: .http)
    table.apply(
      ProxySnapshot(
        version: 1,
        services: [
          ProxyService(
            name: "lax", vip: "100.64.0.8", ports: [port], balancer: ServiceBalancing(),
            endpoints: ["100.96.2.3"],
            namespace: "blue"),
          ProxyService(
            name: "tight", vip: "100.64.0.9", ports: [port], balancer: ServiceBalancing(),
            endpoints: ["100.96.2.3"],
            namespace: "blue"),
        ],
        policies: [
          ProxyAccessPolicy(
            name: "tight-only-batch",
            spec: AccessPolicySpec(
              service: "tight", action: .allow, rules: [AccessRule(from: AccessSource(namespaces: ["jobs"]))])
          )
        ]))
    let endpoint = (100 << 24) | (96 << 16) | (2 << 8) | 3 as UInt32
    let all = table.authorizeAll(address: endpoint, port: 8080, peer: nil, request: nil)
    #expect(!all.allowed && all.reason.contains("tight-only-batch"), "\(all.reason)")
    #expect(table.authorize(service: "lax", peer: nil, request: nil).allowed, "the lax one alone would allow")
  }
}
