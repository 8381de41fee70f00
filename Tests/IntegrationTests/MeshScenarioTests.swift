import Foundation
import Testing
import WeftLab
import WeftLinux
import WeftModel
import WeftProxy

/// `weft echo call URL -n N -o json` from a lab workload, with extra `headers`, decoded. Unless
/// `keepAlive`, every request on a connection of its own (a `tcp` service is balanced per
/// connection).
func echoCall(
  _ lab: String, _ from: String, _ url: String, _ n: Int, keepAlive: Bool = false, headers: [String] = []
) throws -> [String: Any] {
  let result = try weftArgs(
    ["lab", "exec", lab, from, "--", weftBinary, "echo", "call", url, "-n", String(n), "-o", "json"]
      + headers.flatMap { ["-H", $0] } + (keepAlive ? [] : ["-H", "Connection: close"]))
  let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
  return object ?? [:]
}

/// The path of a probe script in scripts/probes.
func probe(_ name: String) -> String {
  URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("scripts/probes/\(name)").path
}

/// Runs a probe script in a lab workload and decodes the JSON line it prints.
func runProbe(_ lab: String, _ from: String, _ script: String, _ args: [String]) throws -> [String: Any] {
  let result = try weftArgs(["lab", "exec", lab, from, "--", "/usr/bin/python3", probe(script)] + args)
  let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
  return object ?? ["output": result.output]
}

/// A lab for the mesh scenarios: network blue and service backend (`spec` lines added to its
/// spec), a scratch directory, and the processes a test starts; `tearDown` removes them all.
final class MeshLab {
  let name: String
  let logs: String
  var pids: [pid_t] = []

  /// `up` adds arguments to `weft lab up` (certificate lifetimes, say).
  init(_ name: String, hosts: Int, spec: String, up arguments: [String] = []) throws {
    self.name = name
    _ = try? Lab.down(name: name)
    let up = try weftArgs(["lab", "up", name, "--hosts", String(hosts)] + arguments)
    #expect(up.status == 0, "\(up.output)")
    self.logs = FileManager.default.temporaryDirectory.appendingPathComponent("weft-\(name)-mesh").path
    try FileManager.default.createDirectory(atPath: self.logs, withIntermediateDirectories: true)
    let applied = try labApply(
      name,
      """
      apiVersion: weft/v1
      kind: Network
      metadata: {name: blue}
      spec: {cidr: 100.96.0.0/16}
      ---
      apiVersion: weft/v1
      kind: Service
      metadata: {name: backend}
      spec:
        network: blue
        selector: {app: backend}
      \(spec)
      """)
    #expect(applied.status == 0, "\(applied.output)")
  }

  /// Adds a workload (with a sidecar when `mesh`) labelled `label` (`k=v`, comma-separated for
  /// more); one named b... serves `weft echo` on 8080, and with `streams` also WebSocket on
  /// 8081, HTTP/2 on 8082 and an opaque TCP echo on 8083.
  func add(_ workload: String, host: Int, label: String, mesh: Bool = false, streams: Bool = false) throws {
    let labels = label.split(separator: ",").flatMap { ["--label", String($0)] }
    let add = try weftArgs(
      ["lab", "workload", "add", self.name, workload, "--host", "host\(host)", "--network", "blue"] + labels
        + (mesh ? ["--mesh"] : []))
    #expect(add.status == 0, "\(add.output)")
    if workload.hasPrefix("b") {
      let namespace = NetworkNamespace("weft-\(self.name)-wl.\(workload)")
      self.pids.append(
        try namespace.spawnDetached(
          [weftBinary, "echo", "serve", "--port", "8080", "--name", workload]
            + (streams ? ["--ws-port", "8081", "--h2-port", "8082"] : []),
          logPath: "\(self.logs)/\(workload).log"))
      if streams {
        self.pids.append(
          try namespace.spawnDetached(
            ["/usr/bin/python3", probe("tcp-echo.py"), "8083", workload],
            logPath: "\(self.logs)/\(workload)-tcp.log"))
      }
    }
  }

  /// The overlay address of a workload of the lab.
  func address(_ workload: String) throws -> String {
    String(
      try #require(
        Lab.load(self.name)?.workloads?.first { $0.name == workload }?.address.split(separator: "/").first))
  }

  /// A series' value from a workload's sidecar /metrics (0 when absent), or with `sum` the sum
  /// of every series starting with `series`.
  func metric(_ workload: String, _ series: String, sum: Bool = false) throws -> Double {
    let text = try labExec(self.name, workload, "curl", "-sf", "http://127.0.0.1:15000/metrics").output
    let lines = text.split(separator: "\n").filter { $0.hasPrefix(sum ? series : series + " ") }
    let values = lines.compactMap { Double($0.split(separator: " ").last!) }
    return sum ? values.reduce(0, +) : values.first ?? 0
  }

  /// Tells a `weft echo` replica how to answer (`PUT /_weft/echo`, sent from `from`).
  func behave(
    _ replica: String, from: String = "client", latency: Int = 0, fail: Double = 0, healthy: Bool = true,
    refuseStreams: Bool = false
  ) throws {
    let json =
      "{\"name\":\"\(replica)\",\"latencyMilliseconds\":\(latency),\"failRatio\":\(fail),\"failStatus\":503,"
      + "\"healthy\":\(healthy),\"refuseStreams\":\(refuseStreams)}"
    let put = try labExec(
      self.name, from, "curl", "-sf", "-X", "PUT", "-H", "content-type: application/json", "-d", json,
      "http://\(try self.address(replica)):8080/_weft/echo")
    #expect(put.status == 0, "\(replica): \(put.output)")
  }

  func tearDown() {
    for pid in self.pids { Spawn.stop(pid) }
    _ = try? Lab.down(name: self.name)
    try? FileManager.default.removeItem(atPath: self.logs)
  }
}

/// The lab scenarios of the mesh, one suite at a time: each runs a multi-host lab with sidecars
/// and makes timing claims (latency bounds, drains, captures) that two labs at once on two cores
/// would blur.
@Suite("mesh labs, one at a time", .serialized)
struct MeshLabScenarios {}

extension MeshLabScenarios {
  @Suite("sidecar: a workload's TCP goes through weft proxy to a service's endpoints", .serialized)
  struct MeshScenarioTests {
    let lab = "ms\(getpid() % 100_000)"

    @Test func connectionsToAServiceVIPAreSpreadOverItsEndpointsAndOthersPassUntouched() async throws {
      let mesh = try MeshLab(
        self.lab, hosts: 3, spec: "  ports: [{port: 80, targetPort: 8080, protocol: http}]")
      defer { mesh.tearDown() }
      let lab = mesh.name
      let logs = mesh.logs
      try mesh.add("client", host: 1, label: "app=client")
      try mesh.add("b1", host: 2, label: "app=backend")
      try mesh.add("b2", host: 3, label: "app=backend")
      let client = try Lab.client(lab)
      let resources = try await client.list(.service).items + client.list(.workload).items
      let snapshot = ProxySnapshot.build(version: 1, from: resources)
      let backend = try #require(snapshot.services.first)
      #expect(backend.vip == "100.64.0.1")
      #expect(backend.endpoints.count == 2)
      let b1 = try #require(
        resources.first { $0.metadata.name == "b1" }.flatMap { try? $0.decodeSpec(WorkloadSpec.self).address }
      )
      #expect(
        eventually(15) {
          (try? labExec(lab, "client", "curl", "-sf", "-m", "2", "http://\(b1):8080/"))?.status == 0
        },
        "b1 answers directly")

      // Without the sidecar the VIP leads nowhere.
      let before = try echoCall(lab, "client", "http://100.64.0.1/", 1)
      #expect((before["errors"] as? [String: Int])?.isEmpty == false, "\(before)")

      // With it, round robin over the two endpoints, exactly even.
      let config = "\(logs)/snapshot.json"
      try JSONEncoder().encode(snapshot).write(to: URL(fileURLWithPath: config))
      mesh.pids.append(
        try NetworkNamespace("weft-\(lab)-wl.client").spawnDetached(
          [weftBinary, "proxy", "--config", config], logPath: "\(logs)/proxy.log"))
      #expect(
        try eventually(10) {
          try labExec(lab, "client", "nft", "list", "table", "ip", "weft_mesh").status == 0
        },
        "the interception rules go in once the proxy is ready")
      // The port speaks http: the sidecar balances each request, even on one kept-alive connection.
      let spread = try echoCall(lab, "client", "http://100.64.0.1/", 40, keepAlive: true)
      #expect(spread["statuses"] as? [String: Int] == ["200": 40], "\(spread)")
      #expect(spread["workloads"] as? [String: Int] == ["b1": 20, "b2": 20], "\(spread)")
      // A 300 KB body goes through to an endpoint and comes back (echoed) byte for byte.
      let payload = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
      try payload.write(to: URL(fileURLWithPath: "\(logs)/payload.bin"))
      let echoed = try labExec(
        lab, "client", "curl", "-sf", "-o", "\(logs)/echoed.bin", "--data-binary", "@\(logs)/payload.bin",
        "http://100.64.0.1/upload")
      #expect(echoed.status == 0, "\(echoed.output)")
      #expect(FileManager.default.contents(atPath: "\(logs)/echoed.bin") == payload)
      // A request that could be read two ways (Content-Length and Transfer-Encoding) is refused.
      let smuggled = try labExec(
        lab, "client", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Length: 5", "-H",
        "Transfer-Encoding: chunked", "-d", "hello", "http://100.64.0.1/")
      #expect(smuggled.output == "400", "\(smuggled.output)")

      // A destination that is not a service passes through the proxy untouched.
      let direct = try labExec(lab, "client", "curl", "-sf", "-m", "2", "http://\(b1):8080/")
      #expect(direct.output == "b1\n")

      // A new snapshot (only b2 left) applies without a restart.
      var next = snapshot
      next.version = 2
      next.services[0].endpoints = next.services[0].endpoints.filter { $0 != b1 }
      try JSONEncoder().encode(next).write(to: URL(fileURLWithPath: config))
      #expect(
        eventually(10) {
          (try? echoCall(lab, "client", "http://100.64.0.1/", 4))?["workloads"] as? [String: Int] == ["b2": 4]
        },
        "the new snapshot is used")

      // ewma: a replica made slow (50 ms added) gets clearly less than round robin's half.
      let slow = "{\"name\":\"b1\",\"latencyMilliseconds\":50,\"failRatio\":0,\"failStatus\":503}"
      #expect(
        try labExec(
          lab, "client", "curl", "-sf", "-X", "PUT", "-H", "content-type: application/json", "-d", slow,
          "http://\(b1):8080/_weft/echo"
        ).status == 0)
      var ewma = snapshot
      ewma.version = 3
      ewma.services[0].balancer = ServiceBalancing(policy: .ewma)
      try JSONEncoder().encode(ewma).write(to: URL(fileURLWithPath: config))
      #expect(
        eventually(10) {
          ((try? echoCall(lab, "client", "http://100.64.0.1/", 4, keepAlive: true))?["workloads"]
            as? [String: Int])?[
              "b2"] != nil
            && (try? String(contentsOfFile: "\(logs)/proxy.log", encoding: .utf8))?.contains("version 3")
              == true
        })
      let weighed = try weftArgs([
        "lab", "exec", lab, "client", "--", weftBinary, "echo", "call", "http://100.64.0.1/", "-n", "200",
        "-c",
        "4",
        "-o", "json",
      ])
      let counts =
        (try JSONSerialization.jsonObject(with: Data(weighed.output.utf8)) as? [String: Any])?["workloads"]
        as? [String: Int] ?? [:]
      #expect((counts["b1"] ?? 0) + (counts["b2"] ?? 0) == 200, "\(weighed.output)")
      #expect((counts["b1"] ?? 0) < 60, "the slow replica gets well under half: \(counts)")
      print("mesh: ewma with b1 50 ms slower: \(counts)")

      // ring_hash on a header: each user sticks to one replica; different users spread.
      var ring = snapshot
      ring.version = 4
      ring.services[0].balancer = ServiceBalancing(policy: .ringHash, hashKey: .header("x-user"))
      try JSONEncoder().encode(ring).write(to: URL(fileURLWithPath: config))
      #expect(
        eventually(10) {
          (try? String(contentsOfFile: "\(logs)/proxy.log", encoding: .utf8))?.contains("version 4") == true
        })
      var replicaOf: [String: String] = [:]
      for user in (1...12).map({ "user\($0)" }) {
        let calls = try weftArgs([
          "lab", "exec", lab, "client", "--", weftBinary, "echo", "call", "http://100.64.0.1/", "-n", "10",
          "-H",
          "x-user: \(user)", "-o", "json",
        ])
        let seen =
          (try JSONSerialization.jsonObject(with: Data(calls.output.utf8)) as? [String: Any])?["workloads"]
          as? [String: Int] ?? [:]
        #expect(seen.count == 1 && seen.values.first == 10, "\(user) sticks to one replica: \(seen)")
        replicaOf[user] = seen.keys.first
      }
      #expect(Set(replicaOf.values).count == 2, "twelve users use both replicas: \(replicaOf)")

      // Stopped, the proxy takes its rules along: direct traffic still flows, the VIP is gone again.
      Spawn.stop(mesh.pids.removeLast())
      #expect(try labExec(lab, "client", "nft", "list", "table", "ip", "weft_mesh").status != 0)
      #expect(try labExec(lab, "client", "curl", "-sf", "-m", "2", "http://\(b1):8080/").output == "b1\n")
      let proxyLog = (try? String(contentsOfFile: "\(logs)/proxy.log", encoding: .utf8)) ?? ""
      #expect(
        proxyLog.contains("weft proxy: ready") && proxyLog.contains("snapshot version 4"), "\(proxyLog)")
    }

    @Test func aMeshedWorkloadFollowsItsAgentAndKeepsServingWhenTheAgentIsAway() async throws {
      let mesh = try MeshLab(
        self.lab + "a", hosts: 2,
        spec: """
            ports: [{port: 80, targetPort: 8080}, {port: 81, targetPort: 8080, protocol: http}]
            healthCheck: {path: /healthz, intervalSeconds: 1, timeoutMilliseconds: 500}
          """)
      defer { mesh.tearDown() }
      let lab = mesh.name
      func add(_ name: String, host: Int, label: String, mesh meshed: Bool = false) throws {
        try mesh.add(name, host: host, label: label, mesh: meshed)
      }
      try add("b1", host: 2, label: "app=backend,version=v1")
      try add("client", host: 1, label: "app=client", mesh: true)  // returns once its sidecar intercepts
      let state = try #require(Lab.load(lab))
      #expect(state.workloads?.first { $0.name == "client" }?.proxyPID != nil)
      func answers(_ n: Int) -> [String: Int]? {
        (try? echoCall(lab, "client", "http://100.64.0.1/", n))?["workloads"] as? [String: Int]
      }
      #expect(eventually(15) { answers(4) == ["b1": 4] }, "the sidecar routes the VIP to b1")

      // A replica that joins reaches the sidecar through the agent's watch, with no restart.
      try add("b2", host: 2, label: "app=backend,version=v1")
      #expect(eventually(15) { answers(10) == ["b1": 5, "b2": 5] }, "b2 joins the rotation")

      // A replica whose health check fails gets no traffic, and gets it back once healthy.
      try mesh.behave("b1", healthy: false)
      let failedAt = Date()
      #expect(eventually(8) { answers(10) == ["b2": 10] }, "unhealthy b1 leaves the rotation")
      print(
        "mesh: b1 out of rotation \(Int(Date().timeIntervalSince(failedAt) * 1000)) ms after its check started failing"
      )
      let health = try await Lab.client(lab).endpoints(of: "backend").map(\.healthy)
      #expect(health == [false, true], "\(health)")
      try mesh.behave("b1", healthy: true)
      #expect(eventually(8) { answers(10) == ["b1": 5, "b2": 5] }, "healthy again, b1 is back")

      // The admin page tells what happened: connections through the service, by endpoint.
      let metrics = try labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/metrics").output
      #expect(
        metrics.contains("weft_proxy_connections_total{direction=\"outbound\",outcome=\"service\"}"),
        "\(metrics)")
      let clusters = try labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/clusters").output
      let parsed = try JSONSerialization.jsonObject(with: Data(clusters.utf8)) as? [[String: Any]]
      let endpoints = parsed?.first?["endpoints"] as? [[String: Any]] ?? []
      #expect(endpoints.count == 2, "\(clusters)")
      #expect(
        endpoints.allSatisfy { ($0["active"] as? Int) == 0 && ($0["healthy"] as? Bool) == true },
        "\(clusters)")
      #expect(try labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/ready").output == "ready\n")

      // The host agent answers for the mesh's names on the gateway, checked with dig.
      func dig(_ args: String...) throws -> String {
        try weftArgs(
          ["lab", "exec", lab, "client", "--", "dig", "+time=2", "+tries=1", "@100.96.1.1"] + args
        )
        .output
      }
      #expect(
        try dig("+short", "backend.weft").trimmingCharacters(in: .whitespacesAndNewlines) == "100.64.0.1")
      #expect(
        try dig("+short", "B1.weft").trimmingCharacters(in: .whitespacesAndNewlines)
          == (try mesh.address("b1"))
      )
      #expect(try dig("nosuch.weft").contains("status: NXDOMAIN"))
      #expect(try dig("backend.weft", "AAAA").contains("status: NOERROR"))

      // A route: testers (x-canary: yes) go to v2; everyone else is split 90/10 over v1 and v2,
      // per request on the http port and per connection on the tcp one.
      try add("b3", host: 1, label: "app=backend,version=v2")
      let routed = try labApply(
        lab,
        """
        apiVersion: weft/v1
        kind: Route
        metadata: {name: backend-canary}
        spec:
          service: backend
          rules:
            - name: testers
              match: {headers: {x-canary: "yes"}}
              backends: [{subset: {version: v2}}]
            - name: canary
              backends: [{subset: {version: v1}, weight: 90}, {subset: {version: v2}, weight: 10}]
        """)
      #expect(routed.status == 0, "\(routed.output)")
      func calls(_ url: String, _ n: Int, keepAlive: Bool = true, header: [String] = []) -> [String: Int] {
        (try? echoCall(lab, "client", url, n, keepAlive: keepAlive, headers: header))?["workloads"]
          as? [String: Int]
          ?? [:]
      }
      #expect(eventually(15) { calls("http://100.64.0.1:81/", 20, header: ["x-canary: yes"]) == ["b3": 20] })
      let split = calls("http://100.64.0.1:81/", 2000)
      let v2Share = Double(split["b3", default: 0]) / 20.0
      print("mesh: 90/10 route over 2000 requests: \(split) (v2 \(v2Share)%)")
      #expect(split.values.reduce(0, +) == 2000 && abs(v2Share - 10) <= 2, "\(split)")
      #expect(
        abs((split["b1"] ?? 0) - (split["b2"] ?? 0)) <= 1, "v1's share round-robins over b1 and b2: \(split)")
      let nearMiss = calls("http://100.64.0.1:81/", 20, header: ["x-canary: Yes"])
      #expect(
        nearMiss.values.reduce(0, +) == 20 && (nearMiss["b3"] ?? 0) <= 3, "exact match only: \(nearMiss)")
      let connections = calls("http://100.64.0.1/", 100, keepAlive: false)
      #expect(
        connections.values.reduce(0, +) == 100 && abs((connections["b3"] ?? 0) - 10) <= 2, "\(connections)")

      // Fault injection: the canary rule aborts 5% with 503; over 4,000 requests that is 5% within
      // a point (exactly 200: shares are spread evenly, not drawn).
      let faulted = try labApply(
        lab,
        """
        apiVersion: weft/v1
        kind: Route
        metadata: {name: backend-canary}
        spec:
          service: backend
          rules:
            - name: testers
              match: {headers: {x-canary: "yes"}}
              backends: [{subset: {version: v2}}]
            - name: canary
              backends: [{subset: {version: v1}, weight: 90}, {subset: {version: v2}, weight: 10}]
              fault: {abort: {status: 503, percent: 5}}
        """)
      #expect(faulted.status == 0, "\(faulted.output)")
      func statuses(_ n: Int) -> [String: Int] {
        (try? echoCall(lab, "client", "http://100.64.0.1:81/", n, keepAlive: true))?["statuses"]
          as? [String: Int]
          ?? [:]
      }
      #expect(eventually(10) { statuses(40)["503"] == 2 }, "the fault applies")
      let injected = statuses(4000)
      let share = Double(injected["503"] ?? 0) / 40
      print("mesh: injected aborts over 4000 requests: \(injected) (\(share)%)")
      #expect(abs(share - 5) <= 1 && injected.values.reduce(0, +) == 4000, "\(injected)")

      // The agent goes away: the sidecar keeps its last snapshot and keeps serving.
      try Lab.stopAgent(lab: lab, host: "host1")
      #expect(calls("http://100.64.0.1:81/", 20, header: ["x-canary: yes"]) == ["b3": 20])
      let log = (try? String(contentsOfFile: "/run/weft/labs/\(lab)/client-proxy.log", encoding: .utf8)) ?? ""
      #expect(log.contains("weft proxy: ready"), "\(log)")

      // Removing the workload stops its sidecar.
      let pid = try #require(state.workloads?.first { $0.name == "client" }?.proxyPID)
      #expect(try weftArgs(["lab", "workload", "rm", lab, "client"]).status == 0)
      #expect(!Spawn.isAlive(pid))
    }

    @Test func http2WebSocketAndOpaqueStreamsPassAndBadTrafficIsStopped() async throws {
      let mesh = try MeshLab(
        self.lab + "s", hosts: 2,
        spec: """
            ports:
              - {port: 80, targetPort: 8080, protocol: http}
              - {port: 81, targetPort: 8081, protocol: http}
              - {port: 82, targetPort: 8082, protocol: grpc}
              - {port: 83, targetPort: 8083, protocol: tcp}
            outlierDetection: {consecutive5xx: 3, baseEjectionMilliseconds: 1500}
          """)
      defer { mesh.tearDown() }
      let lab = mesh.name
      try mesh.add("b1", host: 2, label: "app=backend", streams: true)
      try mesh.add("b2", host: 2, label: "app=backend", streams: true)
      try mesh.add("client", host: 1, label: "app=client", mesh: true)
      #expect(
        eventually(15) {
          (try? echoCall(lab, "client", "http://100.64.0.1/", 2))?["workloads"] as? [String: Int] == [
            "b1": 1, "b2": 1,
          ]
        })
      /// Requests (or connections) each endpoint has finished, from the sidecar's /clusters.
      func completedByEndpoint() throws -> [String: Int] {
        let text = try labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/clusters").output
        let clusters = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] ?? []
        var out: [String: Int] = [:]
        for endpoint in clusters.flatMap({ $0["endpoints"] as? [[String: Any]] ?? [] }) {
          out[endpoint["address"] as? String ?? "?", default: 0] += endpoint["completed"] as? Int ?? 0
        }
        return out
      }
      func completed() throws -> Int { try completedByEndpoint().values.reduce(0, +) }

      // HTTP/2 (h2load, one connection, ten streams at a time): every stream balanced on its own.
      let before = try completedByEndpoint()
      let h2load = try labExec(
        lab, "client", "h2load", "-n", "100", "-c", "1", "-m", "10", "http://100.64.0.1:82/")
      #expect(h2load.output.contains("100 succeeded"), "\(h2load.output)")
      let after = try completedByEndpoint()
      let streamsPerEndpoint = after.map { $0.value - (before[$0.key] ?? 0) }.sorted()
      #expect(streamsPerEndpoint == [50, 50], "each stream is one round-robin pick: \(before) -> \(after)")

      // A gRPC-style call: a 300 KB stream echoed back byte for byte, the status in trailers.
      let logs = mesh.logs
      let payload = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) })
      try payload.write(to: URL(fileURLWithPath: "\(logs)/grpc.bin"))
      let grpc = try labExec(
        lab, "client", "curl", "-s", "--http2-prior-knowledge", "-D", "-", "-o", "\(logs)/grpc-echoed.bin",
        "-H", "content-type: application/grpc", "--data-binary", "@\(logs)/grpc.bin",
        "http://100.64.0.1:82/weft.Echo/Stream")
      #expect(
        grpc.output.contains("grpc-status: 0") && grpc.output.contains("content-type: application/grpc"),
        "\(grpc.output)")
      #expect(FileManager.default.contents(atPath: "\(logs)/grpc-echoed.bin") == payload)

      // An HTTP/2 stream error resets that stream only; the others on the connection are answered.
      let h2 = try runProbe(lab, "client", "h2-streams.py", ["100.64.0.1", "82", "/x"])
      let streams = h2["streams"] as? [String: [String: Any]] ?? [:]
      #expect(h2["goaway"] as? Bool == false, "\(h2)")
      #expect(streams["3"]?["reset"] != nil, "\(h2)")
      for id in ["1", "5"] {
        #expect(
          streams[id]?["ended"] as? Bool == true && (streams[id]?["data"] as? String)?.hasPrefix("b") == true,
          "\(h2)")
      }

      // WebSocket: upgraded through the sidecar, then frames both ways, 100 kB included.
      // (The endpoint's greeting often comes in the same read as its 101; UpgradeTunnelTests
      // pins that case down.)
      let ws = try runProbe(lab, "client", "ws-echo.py", ["100.64.0.1", "81", "/chat"])
      #expect((ws["status"] as? String)?.contains("101") == true, "\(ws)")
      #expect(["b1", "b2"].contains(ws["greeting"] as? String ?? ""), "\(ws)")
      #expect(ws["echoes"] as? [Bool] == [true, true, true] && ws["closed"] as? Bool == true, "\(ws)")

      // Opaque TCP with half-close: the echo ends after the client's FIN, not before.
      let tcp = try labExec(
        lab, "client", "/usr/bin/python3", "-c",
        "import socket; s=socket.create_connection(('100.64.0.1',83),timeout=5); s.sendall(b'ping'); "
          + "s.shutdown(socket.SHUT_WR); d=b''\nwhile True:\n c=s.recv(9)\n if not c: break\n d+=c\nprint(d.decode())"
      )
      #expect(
        ["b1\nping", "b2\nping"].contains(tcp.output.trimmingCharacters(in: .whitespacesAndNewlines)),
        "\(tcp.output)")

      // Bad HTTP/1.1 gets a 400 from the sidecar and reaches no endpoint.
      let beforeBad = try completed()
      let cases = [
        "obs-fold", "duplicate-length", "length-and-chunked", "bad-request-line", "bad-header-name",
        "oversized-header", "too-many-headers",
      ]
      let bad = try runProbe(lab, "client", "raw-http.py", ["100.64.0.1", "80"] + cases)
      for name in cases {
        #expect((bad[name] as? String)?.hasPrefix("HTTP/1.1 400") == true, "\(name): \(bad)")
      }
      #expect(try completed() == beforeBad, "nothing was forwarded")
      let good = try runProbe(lab, "client", "raw-http.py", ["100.64.0.1", "80", "good"])
      #expect(good["good"] as? String == "HTTP/1.1 200 OK", "\(good)")

      // What happened shows in /metrics: requests by protocol and status class, latency, bytes.
      let metrics = try labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/metrics").output
      func value(_ series: String) -> Double? {
        metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap {
          Double($0.split(separator: " ").last!)
        }
      }
      let base = "source=\"client\",destination=\"backend\""
      #expect(
        (value("weft_proxy_requests_total{\(base),protocol=\"http2\",class=\"2xx\"}") ?? 0) >= 102,
        "\(metrics)"
      )
      #expect(
        value("weft_proxy_requests_total{\(base),protocol=\"http\",class=\"4xx\"}") == Double(cases.count))
      #expect(
        (value("weft_proxy_bytes_total{\(base),protocol=\"http2\",direction=\"sent\"}") ?? 0) >= 300_000)
      #expect(value("weft_proxy_tcp_connections_total{\(base),protocol=\"tcp\"}") == 1, "\(metrics)")
      #expect(
        value("weft_proxy_request_duration_seconds_count{\(base),protocol=\"http2\"}")
          == value("weft_proxy_request_duration_seconds_bucket{\(base),protocol=\"http2\",le=\"+Inf\"}"))

      // A replica that answers 503 to everything is ejected after exactly three (the configured
      // count), the others take the traffic, and it is back once its ejection time is over.
      // A route retries gateway errors (up to 3 attempts) on another endpoint: the client sees
      // none of the three failures.
      let retrying = try labApply(
        lab,
        """
        apiVersion: weft/v1
        kind: Route
        metadata: {name: backend-retries}
        spec:
          service: backend
          rules: [{name: all, backends: [{}], retries: {attempts: 3}, timeoutMilliseconds: 5000}]
        """)
      #expect(retrying.status == 0, "\(retrying.output)")
      #expect(
        eventually(10) {
          (try? labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/config").output)?.contains(
            "attempts")
            == true
        })
      try mesh.behave("b1", fail: 1)
      let failing = try echoCall(lab, "client", "http://100.64.0.1/", 40, keepAlive: true)
      #expect(failing["statuses"] as? [String: Int] == ["200": 40], "retried on b2: \(failing)")
      let retried = try labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/metrics").output
      #expect(
        retried.contains("weft_proxy_retries_total{source=\"client\",destination=\"backend\"} 3"),
        "\(retried)")
      let ejectedAt = Date()
      let clusters = try labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/clusters").output
      #expect(
        clusters.contains("\"ejected\" : true") && clusters.contains("\"ejections\" : 1"), "\(clusters)")
      try mesh.behave("b1")
      #expect(
        eventually(5) {
          ((try? echoCall(lab, "client", "http://100.64.0.1/", 4, keepAlive: true))?["workloads"]
            as? [String: Int])?[
              "b1"] != nil
        }, "b1 is back after its ejection")
      print(
        "mesh: b1 ejected after 3 x 503, back \(Int(Date().timeIntervalSince(ejectedAt) * 1000)) ms later")

      // A replica killed (kill -9) under load: with retries, no request fails at the client.
      let load = Process()
      load.executableURL = URL(fileURLWithPath: weftBinary)
      load.arguments = [
        "lab", "exec", lab, "client", "--", weftBinary, "echo", "call", "http://100.64.0.1/", "-n", "600",
        "-c",
        "4",
        "-o", "json",
      ]
      let loadOutput = Pipe()
      load.standardOutput = loadOutput
      try load.run()
      try await Task.sleep(for: .milliseconds(400))
      kill(mesh.pids[0], SIGKILL)  // b1's echo server
      load.waitUntilExit()
      let underKill =
        (try? JSONSerialization.jsonObject(with: loadOutput.fileHandleForReading.readDataToEndOfFile()))
        as? [String: Any] ?? [:]
      #expect(underKill["statuses"] as? [String: Int] == ["200": 600], "\(underKill)")
      print(
        "mesh: replica killed under load: \(underKill["statuses"] ?? "?"), \(underKill["workloads"] ?? "?")")

      // Stopping drains: a request in flight (b2, the one left, now answers after 1.5 s) gets its
      // answer; the sidecar then exits, having cut nothing.
      try mesh.behave("b2", latency: 1500)  // b1 was killed above
      let inFlight = Process()
      inFlight.executableURL = URL(fileURLWithPath: weftBinary)
      inFlight.arguments = [
        "lab", "exec", lab, "client", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
        "http://100.64.0.1/",
      ]
      let pipe = Pipe()
      inFlight.standardOutput = pipe
      try inFlight.run()
      try await Task.sleep(for: .milliseconds(500))
      let pid = try #require(Lab.load(lab)?.workloads?.first { $0.name == "client" }?.proxyPID)
      let stopping = Date()
      Spawn.stop(pid, grace: .seconds(5))
      let stopped = Date().timeIntervalSince(stopping)
      inFlight.waitUntilExit()
      let code = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      #expect(code == "200", "the request in flight was answered: \(code)")
      // It left on its own once the request was done (not at the drain deadline, not killed).
      let log = (try? String(contentsOfFile: "/run/weft/labs/\(lab)/client-proxy.log", encoding: .utf8)) ?? ""
      #expect(log.contains("drained 1 connection(s)") && log.contains("0 cut at the deadline"), "\(log)")
      print("mesh: drained a request in flight; the sidecar stopped \(Int(stopped * 1000)) ms after SIGTERM")
    }
  }
}
