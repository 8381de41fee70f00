import Foundation
import Testing
import WeftLab
import WeftLinux

extension MeshLabScenarios {
  /// The chaos scenarios of the resilience work, in one 3-host lab: a meshed client on host1, three
  /// meshed `weft echo` replicas (b1 and b2 on host2, b3 on host3), and one service per scenario
  /// over the same replicas, so that each scenario's knobs and counters are its own.
  @Suite("resilience: slow, failing, limited and cut-off replicas are contained", .serialized)
  struct ResilienceScenarioTests {
    let lab = "rs\(getpid() % 100_000)"

    /// Services (VIP .1 to .6) over the replicas: `backend` (ewma, per-try timeout and retries),
    /// `steady` (outlier detection, retries), `fragile` (retries under a tight budget),
    /// `limited` (a local rate limit at each replica), `streams` (HTTP/2, retries) and `sturdy`
    /// (short ejections, retries).
    static let services = [
      route("backend", "{attempts: 3, perTryTimeoutMilliseconds: 100}, timeoutMilliseconds: 3000"),
      service(
        "steady", vip: 2,
        "outlierDetection: {consecutive5xx: 0, consecutiveGatewayErrors: 3, baseEjectionMilliseconds: 60000, maxEjectionPercent: 34}"
      ),
      route("steady", "{attempts: 3, perTryTimeoutMilliseconds: 300}"),
      service("fragile", vip: 3),
      route("fragile", "{attempts: 3, budgetPercent: 20, minRetriesPerSecond: 1}"),
      service("limited", vip: 4, "rateLimit: {requestsPerSecond: 2, burst: 5}"),
      service("streams", vip: 5, port: "{port: 82, targetPort: 8082, protocol: http2}"),
      route("streams", "{attempts: 3, budgetPercent: 100, minRetriesPerSecond: 100}"),
      service(
        "sturdy", vip: 6,
        "outlierDetection: {consecutive5xx: 0, consecutiveGatewayErrors: 3, baseEjectionMilliseconds: 1000, maxEjectionPercent: 34}"
      ),
      route("sturdy", "{attempts: 3, budgetPercent: 50}"),
    ].joined(separator: "\n---\n")

    /// A Service over the replicas at VIP 100.64.0.`vip`, with `extra` spec lines.
    static func service(
      _ name: String, vip: Int, port: String = "{port: 80, targetPort: 8080, protocol: http}",
      _ extra: String = ""
    ) -> String {
      """
      apiVersion: weft/v1
      kind: Service
      metadata: {name: \(name)}
      spec:
        network: blue
        selector: {app: backend}
        vip: 100.64.0.\(vip)
        ports: [\(port)]
        \(extra)
      """
    }

    /// A Route for `service` with one rule for every request, retried as `retries` says (more
    /// rule fields may follow).
    static func route(_ service: String, _ retries: String) -> String {
      """
      apiVersion: weft/v1
      kind: Route
      metadata: {name: \(service)}
      spec:
        service: \(service)
        rules: [{name: all, backends: [{}], retries: \(retries)}]
      """
    }

    @Test func slowFailingLimitedAndCutOffReplicasAreContained() async throws {
      let mesh = try MeshLab(
        self.lab, hosts: 3,
        spec: """
            vip: 100.64.0.1
            ports: [{port: 80, targetPort: 8080, protocol: http}]
            balancer: {policy: ewma}
          """)
      defer { mesh.tearDown() }
      let lab = mesh.name
      let applied = try labApply(lab, Self.services)
      #expect(applied.status == 0, "\(applied.output)")
      try mesh.add("client", host: 1, label: "app=client", mesh: true)
      try mesh.add("b1", host: 2, label: "app=backend", mesh: true, streams: true)
      try mesh.add("b2", host: 2, label: "app=backend", mesh: true, streams: true)
      try mesh.add("b3", host: 3, label: "app=backend", mesh: true, streams: true)
      let replicas = ["b1", "b2", "b3"]
      var address: [String: String] = [:]
      for replica in replicas { address[replica] = try mesh.address(replica) }
      let fragileSince = Date()  // the retry budgets earn their minimum from their first request on
      #expect(
        eventually(30) {
          ["100.64.0.1", "100.64.0.2", "100.64.0.3", "100.64.0.6"].allSatisfy { vip in
            ((try? echoCall(lab, "client", "http://\(vip)/", 9, keepAlive: true))?["statuses"]
              as? [String: Int])
              == ["200": 9]
          }
        }, "every service answers through both sidecars")
      // (Its rate limit holds 15 requests at first: only a few here.)
      #expect(
        eventually(10) {
          ((try? echoCall(lab, "client", "http://100.64.0.4/", 3, keepAlive: true))?["statuses"]
            as? [String: Int])
            == ["200": 3]
        })

      func served() throws -> Int {
        try replicas.reduce(0) { total, replica in
          let text = try labExec(
            lab, "client", "curl", "-sf", "http://\(address[replica]!):8080/_weft/echo/served"
          )
          .output
          let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Int]
          return total + (object?["served"] ?? -1_000_000)
        }
      }
      func load(_ vip: String, _ n: Int, concurrency: Int, headers: [String] = []) throws -> [String: Any] {
        let result = try weftArgs(
          [
            "lab", "exec", lab, "client", "--", weftBinary, "echo", "call", "http://\(vip)/", "-n", String(n),
            "-c",
            String(concurrency), "-o", "json",
          ] + headers.flatMap { ["-H", $0] })
        return (try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]) ?? [:]
      }

      // (a) Under a steady load, one replica's server is killed (SIGKILL) and started again a
      // second later: with retries and outlier detection no request fails, and the restarted
      // replica gets traffic again once its ejection is over.
      for replica in replicas { try mesh.behave(replica, latency: 5) }
      let steadyLoad = Process()
      steadyLoad.executableURL = URL(fileURLWithPath: weftBinary)
      steadyLoad.arguments = [
        "lab", "exec", lab, "client", "--", weftBinary, "echo", "call", "http://100.64.0.6/", "--duration",
        "3",
        "-c",
        "4", "-o", "json",
      ]
      let steadyOutput = Pipe()
      steadyLoad.standardOutput = steadyOutput
      try steadyLoad.run()
      try await Task.sleep(for: .milliseconds(700))
      kill(mesh.pids[2], SIGKILL)  // b2's echo server (b1's two processes come first)
      try await Task.sleep(for: .seconds(1))
      mesh.pids.append(
        try NetworkNamespace("weft-\(lab)-wl.b2").spawnDetached(
          [
            weftBinary, "echo", "serve", "--port", "8080", "--name", "b2", "--ws-port", "8081", "--h2-port",
            "8082",
          ],
          logPath: "\(mesh.logs)/b2-restarted.log"))
      steadyLoad.waitUntilExit()
      let underKill =
        (try? JSONSerialization.jsonObject(with: steadyOutput.fileHandleForReading.readDataToEndOfFile()))
        as? [String: Any] ?? [:]
      let killedStatuses = underKill["statuses"] as? [String: Int] ?? [:]
      #expect(killedStatuses.keys.sorted() == ["200"] && (killedStatuses["200"] ?? 0) > 100, "\(underKill)")
      #expect(
        eventually(10) {
          ((try? echoCall(lab, "client", "http://100.64.0.6/", 12, keepAlive: true))?["workloads"]
            as? [String: Int])?[
              "b2"] != nil
        }, "the restarted replica is back in rotation")
      let sturdyRetries = try mesh.metric(
        "client", "weft_proxy_retries_total{source=\"client\",destination=\"sturdy\"}")
      print(
        "resilience (a): b2 killed and restarted under load: \(killedStatuses), \(underKill["workloads"] ?? "?"), \(Int(sturdyRetries)) retries"
      )

      // (c) One replica ten times slower (300 ms against 30 ms): ewma keeps most requests off it,
      // and the 100 ms per-try timeout moves the rest to another replica, so no client waits for
      // it. The bound is the slow replica's own latency: p99 under 250 ms.
      for replica in replicas { try mesh.behave(replica, latency: replica == "b3" ? 300 : 30) }
      let slow = try load("100.64.0.1", 300, concurrency: 4)
      let slowLatency = slow["latency"] as? [String: Any] ?? [:]
      let p99 = (slowLatency["p99"] as? Double ?? .infinity) / 1000
      #expect(slow["statuses"] as? [String: Int] == ["200": 300], "\(slow)")
      #expect((slow["workloads"] as? [String: Int])?["b3"] == nil, "nobody waited for b3: \(slow)")
      #expect(p99 < 250, "p99 \(p99) ms")
      let perTry = try mesh.metric(
        "client", "weft_proxy_timeouts_total{source=\"client\",destination=\"backend\",kind=\"per-try\"}")
      print(
        "resilience (c): b3 10x slower: p99 \(p99) ms, \(slow["workloads"] ?? "?"), per-try timeouts retried: \(Int(perTry))"
      )

      // (d) Every replica fails: the retry budget (20% of requests, 1 a second) holds what reaches
      // the replicas under (1 + 0.2) x the client's requests + 1/s x the time the budget has been
      // saving (since the service was first called) + 0.2 x the requests before, against the
      // 3 x that three attempts each would make.
      for replica in replicas { try mesh.behave(replica, fail: 1) }
      let before = try served()
      let earlier = try mesh.metric(
        "client", "weft_proxy_requests_total{source=\"client\",destination=\"fragile\",", sum: true)
      let started = Date()
      let failing = try load("100.64.0.3", 400, concurrency: 4)
      let elapsed = Date().timeIntervalSince(started)
      print("resilience (d): 400 failing requests took \(elapsed) s")
      let upstream = try served() - before
      let retries = try mesh.metric(
        "client", "weft_proxy_retries_total{source=\"client\",destination=\"fragile\"}")
      let exhausted = try mesh.metric(
        "client", "weft_proxy_retry_budget_exhausted_total{destination=\"fragile\"}")
      let bound = 1.2 * 400 + 0.2 * earlier + 1 * Date().timeIntervalSince(fragileSince).rounded(.up) + 1
      #expect(failing["statuses"] as? [String: Int] == ["503": 400], "\(failing)")
      #expect(
        upstream >= 400 && Double(upstream) <= bound, "\(upstream) reached the replicas; bound \(bound)")
      #expect(Double(upstream - 400) == retries, "every retry reached a replica: \(upstream) vs \(retries)")
      #expect(exhausted > 0)
      print(
        "resilience (d): all failing: 400 requests -> \(upstream) upstream (bound \(Int(bound))), \(Int(exhausted)) retries refused by the budget"
      )

      // A circuit breaker of one upstream connection: requests that need a second connection fail
      // at once with 503 max-connections, and the count says how many.
      for replica in replicas { try mesh.behave(replica, latency: 20) }
      let breaker = try labApply(lab, Self.service("fragile", vip: 3, "circuitBreakers: {maxConnections: 1}"))
      #expect(breaker.status == 0, "\(breaker.output)")
      #expect(
        eventually(10) {
          (try? labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/config").output)?.contains(
            "maxConnections") == true
        })
      let limitedByBreaker = try load("100.64.0.3", 120, concurrency: 4)
      let breakerStatuses = limitedByBreaker["statuses"] as? [String: Int] ?? [:]
      let overflow = try mesh.metric(
        "client", "weft_proxy_overflow_total{destination=\"fragile\",limit=\"max-connections\"}")
      #expect((breakerStatuses["200"] ?? 0) > 0 && (breakerStatuses["503"] ?? 0) > 0, "\(limitedByBreaker)")
      #expect(Double(breakerStatuses["503"] ?? -1) == overflow, "\(breakerStatuses) vs \(overflow)")
      print("resilience: maxConnections 1: \(breakerStatuses)")

      // A local rate limit at each replica (2/s, burst 5): what passes is bounded, the rest gets
      // 429 with Retry-After from the replicas' sidecars, which count exactly those.
      for replica in replicas { try mesh.behave(replica) }
      let rateStart = Date()
      let limited = try load("100.64.0.4", 60, concurrency: 1)
      let rateElapsed = Date().timeIntervalSince(rateStart)
      let rateStatuses = limited["statuses"] as? [String: Int] ?? [:]
      let passed = rateStatuses["200"] ?? 0
      #expect(passed + (rateStatuses["429"] ?? 0) == 60, "\(limited)")
      #expect(
        Double(passed) <= 3 * (5 + 2 * rateElapsed.rounded(.up)), "\(passed) passed in \(rateElapsed) s")
      var refusedAtReplicas = 0.0
      for replica in replicas {
        refusedAtReplicas += try mesh.metric(
          replica,
          "weft_proxy_rate_limited_total{source=\"\(replica)\",destination=\"limited\",kind=\"service\"}")
      }
      #expect(
        refusedAtReplicas == Double(rateStatuses["429"] ?? -1), "\(rateStatuses) vs \(refusedAtReplicas)")
      // Forty calls in a row from one shell outrun the buckets' refill whatever the load: the
      // refusals carry Retry-After and name the sidecar's reason.
      let burst = try labExec(
        lab, "client", "/bin/sh", "-c", "for i in $(seq 1 40); do curl -si http://100.64.0.4/; echo; done"
      ).output.lowercased()
      let sawRetryAfter =
        burst.contains("http/1.1 429") && burst.contains("retry-after: 1")
        && burst.contains("x-weft-proxy: rate-limited")
      #expect(sawRetryAfter, "\(burst.prefix(600))")
      print("resilience: rate limit 2/s burst 5 at 3 replicas: \(rateStatuses) in \(rateElapsed) s")

      // Deadlines: a client request saying it waits 150 ms gets 504 from its own sidecar at that
      // time, not the replicas' 400 ms; sent to a replica directly, the replica's sidecar holds the
      // deadline and answers 504 itself.
      for replica in replicas { try mesh.behave(replica, latency: 400) }
      let timed = try labExec(
        lab, "client", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-H",
        "x-weft-timeout-ms: 150", "http://100.64.0.3/")
      let timedParts = timed.output.split(separator: " ")
      #expect(timedParts.first == "504", "\(timed.output)")
      #expect((Double(timedParts.last ?? "") ?? 1) < 0.35, "\(timed.output)")
      let direct = try labExec(
        lab, "client", "curl", "-si", "-H", "x-weft-timeout-ms: 150", "http://\(address["b1"]!):8080/")
      #expect(
        direct.output.hasPrefix("HTTP/1.1 504") && direct.output.contains("x-weft-proxy: deadline"),
        "\(direct.output)")
      #expect(
        try mesh.metric(
          "b1", "weft_proxy_timeouts_total{source=\"b1\",destination=\"backend\",kind=\"deadline\"}")
          >= 1)

      // HTTP/2 streams are retried too: b1 refuses every stream (REFUSED_STREAM), b2 answers 503,
      // and every one of 30 requests is answered 200 (by b3) without the client seeing a failure.
      try mesh.behave("b1", refuseStreams: true)
      try mesh.behave("b2", fail: 1)
      try mesh.behave("b3")
      let h2 = try labExec(lab, "client", "h2load", "-n", "30", "-c", "1", "-m", "1", "http://100.64.0.5:82/")
      #expect(h2.output.contains("status codes: 30 2xx, 0 3xx, 0 4xx, 0 5xx"), "\(h2.output)")
      let h2Retries = try mesh.metric(
        "client", "weft_proxy_retries_total{source=\"client\",destination=\"streams\"}")
      #expect(h2Retries >= 10, "about two in three streams needed a retry: \(h2Retries)")
      print(
        "resilience: HTTP/2 with b1 refusing streams and b2 failing: 30/30 answered, \(Int(h2Retries)) retries"
      )

      // (f) host3 cut off from the underlay (its link down): b3's attempts time out, it is ejected
      // after three gateway errors, and every request is answered by b1 and b2.
      for replica in replicas { try mesh.behave(replica) }
      let down = try labExec(lab, "host3", "ip", "link", "set", "eth0", "down")
      #expect(down.status == 0, "\(down.output)")
      let cut = try load("100.64.0.2", 300, concurrency: 4)
      let cutWorkloads = cut["workloads"] as? [String: Int] ?? [:]
      #expect(cut["statuses"] as? [String: Int] == ["200": 300], "\(cut)")
      #expect(cutWorkloads["b3"] == nil && (cutWorkloads["b1"] ?? 0) + (cutWorkloads["b2"] ?? 0) == 300)
      let clusters = try labExec(lab, "client", "curl", "-sf", "http://127.0.0.1:15000/clusters").output
      let steady = (try JSONSerialization.jsonObject(with: Data(clusters.utf8)) as? [[String: Any]])?.first {
        $0["service"] as? String == "steady"
      }
      let routed = (steady?["routes"] as? [[String: Any]])?.first?["endpoints"] as? [[String: Any]]
      let b3 = routed?.first { $0["address"] as? String == address["b3"] }
      #expect((b3?["ejected"] as? NSNumber)?.boolValue == true, "\(steady ?? [:])")
      #expect(
        try mesh.metric(
          "client", "weft_proxy_endpoint_ejected{service=\"steady\",endpoint=\"\(address["b3"]!)\"}")
          == 1)
      print("resilience (f): host3 cut off: \(cut["statuses"] ?? "?"), \(cutWorkloads), b3 ejected")
    }
  }
}
