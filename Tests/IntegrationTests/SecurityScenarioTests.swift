import Foundation
import Testing
import WeftLab
import WeftLinux

extension MeshLabScenarios {
  /// Mutual TLS between sidecars in a 2-host lab: a meshed client on host1, a meshed replica on
  /// host2, and a workload without a sidecar (`outsider`) on host1.
  @Suite("security: sidecars speak mutual TLS, strict services refuse plaintext", .serialized)
  struct SecurityScenarioTests {
    let lab = "sc\(getpid() % 100_000)"

    /// The lab's service `backend` (HTTP on 80, HTTP/2 on 82, opaque TCP on 83) with `extra` spec
    /// lines.
    static func backend(_ extra: String = "") -> String {
      """
      apiVersion: weft/v1
      kind: Service
      metadata: {name: backend}
      spec:
        network: blue
        selector: {app: backend}
        ports:
          - {port: 80, targetPort: 8080, protocol: http}
          - {port: 82, targetPort: 8082, protocol: http2}
          - {port: 83, targetPort: 8083, protocol: tcp}
        \(extra)
      """
    }

    @Test func sidecarTrafficIsTLS13OnTheUnderlayAndStrictRefusesPlaintext() async throws {
      let mesh = try MeshLab(
        self.lab, hosts: 2,
        spec: """
            ports:
              - {port: 80, targetPort: 8080, protocol: http}
              - {port: 82, targetPort: 8082, protocol: http2}
              - {port: 83, targetPort: 8083, protocol: tcp}
          """)
      defer { mesh.tearDown() }
      let lab = mesh.name
      try mesh.add("client", host: 1, label: "app=client", mesh: true)
      try mesh.add("b1", host: 2, label: "app=backend", mesh: true, streams: true)
      try mesh.add("outsider", host: 1, label: "app=outsider")
      let b1 = try mesh.address("b1")
      #expect(
        eventually(20) {
          ((try? echoCall(lab, "client", "http://100.64.0.1/", 3))?["statuses"] as? [String: Int]) == [
            "200": 3
          ]
        }, "the client reaches the service through both sidecars")
      // Capture host2's underlay while the client calls: tshark sees VXLAN carrying TLS 1.3
      // handshakes to port 8080 and no HTTP at all; the payload never appears in clear.
      let pcap = "\(mesh.logs)/underlay.pcap"
      // tshark runs as this test's own child in host2's namespace, capturing VXLAN until told to
      // stop (SIGINT) or 25 s have passed, so a slow start under load cannot end it too early.
      let capture = Process()
      capture.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
      capture.arguments = [
        "netns", "exec", "weft-\(lab)-host2", "tshark", "-q", "-i", "eth0", "-f", "udp port 4789", "-a",
        "duration:25", "-w", pcap,
      ]
      capture.standardOutput = FileHandle.nullDevice
      capture.standardError = FileHandle.nullDevice
      try capture.run()
      // tshark writes the file's header once it captures; it can take seconds to start under load.
      #expect(
        eventually(30) {
          ((try? FileManager.default.attributesOfItem(atPath: pcap))?[.size] as? Int ?? 0) >= 24
        }, "tshark started")
      try await Task.sleep(for: .milliseconds(500))
      let secret = "weft-secret-\(UUID().uuidString.prefix(8))"
      let calls = try echoCall(
        lab, "client", "http://100.64.0.1/\(secret)", 20, headers: ["x-probe: \(secret)"])
      #expect(calls["statuses"] as? [String: Int] == ["200": 20], "\(calls)")
      let tcp = try labExec(
        lab, "client", "/usr/bin/python3", probe("tcp-call.py"), "100.64.0.1", "83", secret)
      #expect(
        tcp.output.trimmingCharacters(in: .whitespacesAndNewlines) == "b1 \(secret)",
        "opaque TCP too: \(tcp.output)")
      try await Task.sleep(for: .milliseconds(500))  // the last packets reach the file
      capture.interrupt()
      capture.waitUntilExit()
      // Callers that leave early: five connect and close without a byte (the client's sidecar
      // still dials b1 for them), one half-closes after its request. The half-closer gets its
      // answer, and nothing is left half-open by either sidecar: each FIN is passed on to the
      // far side, which closes (before, a FIN that came while the first bytes were being judged
      // was lost, and the connection waited for the far side's idle timeout).
      let leaver = "import socket\nfor _ in range(5): socket.create_connection(('100.64.0.1', 80)).close()"
      #expect(try labExec(lab, "client", "/usr/bin/python3", "-c", leaver).status == 0)
      let halfCloser = """
        import socket
        s = socket.create_connection(('100.64.0.1', 80))
        s.sendall(b'GET /half HTTP/1.1\\r\\nHost: backend\\r\\n\\r\\n')
        s.shutdown(socket.SHUT_WR)
        answer = b''
        while chunk := s.recv(65536):
            answer += chunk
        print(answer.split(b'\\r\\n')[0].decode())
        """
      let halfClosed = try labExec(lab, "client", "/usr/bin/python3", "-c", halfCloser)
      #expect(
        halfClosed.output.hasPrefix("HTTP/1.1 200"), "a half-closed request is answered: \(halfClosed.output)"
      )
      #expect(
        eventually(10) {
          ["client", "b1"].allSatisfy { workload in
            let lines = (try? labExec(lab, workload, "ss", "-tan", "state", "close-wait").output) ?? "x\nx"
            return lines.split(separator: "\n").count <= 1  // the header line alone
          }
        }, "no connection left half-open in either workload")
      func tshark(_ filter: String, _ field: String) throws -> [String] {
        let result = try weftArgs([
          "lab", "exec", lab, "host2", "--", "tshark", "-r", pcap, "-d", "tcp.port==8080,tls", "-d",
          "tcp.port==8083,tls", "-Y", filter, "-T", "fields", "-e", field,
        ])
        // (tshark's warning about running as root comes on the same output.)
        return result.output.split(separator: "\n").map(String.init).filter {
          !$0.isEmpty && !$0.hasPrefix("Running as user")
        }
      }
      let hellos = try tshark(
        "vxlan && tls.handshake.type == 2", "tls.handshake.extensions.supported_version")
      #expect(
        !hellos.isEmpty && hellos.allSatisfy { $0.contains("0x0304") }, "ServerHello versions: \(hellos)")
      #expect(try tshark("vxlan && http", "http.request.uri").isEmpty, "no plaintext HTTP on the underlay")
      let raw = try Data(contentsOf: URL(fileURLWithPath: pcap))
      #expect(raw.range(of: Data(secret.utf8)) == nil, "the request's path and header never appear in clear")
      #expect(
        try mesh.metric("client", "weft_proxy_connections_total{direction=\"outbound\",outcome=\"mtls\"}")
          >= 1)
      #expect(
        try mesh.metric("b1", "weft_proxy_connections_total{direction=\"inbound\",outcome=\"mtls\"}") >= 1)
      print("security: \(hellos.count) TLS 1.3 handshakes on the underlay, no HTTP; tcp echo \(tcp.output)")

      // Permissive (the default): a workload without a sidecar still reaches b1 in plaintext.
      let plain = try labExec(
        lab, "outsider", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://\(b1):8080/")
      #expect(plain.output == "200", "\(plain.output)")
      #expect(
        try mesh.metric("b1", "weft_proxy_connections_total{direction=\"inbound\",outcome=\"plaintext\"}")
          >= 1)

      // sslscan (an independent TLS client) against b1's inbound: TLS 1.3 only, AEAD suites only.
      let scan = try labExec(lab, "outsider", "sslscan", "--no-colour", "--no-heartbleed", "\(b1):8080")
        .output
      for line in [
        "TLSv1.3   enabled", "TLSv1.2   disabled", "TLSv1.1   disabled", "TLSv1.0   disabled",
        "SSLv3     disabled",
      ] {
        #expect(scan.contains(line), "sslscan: \(line) in \(scan)")
      }
      let suites = scan.split(separator: "\n").filter {
        $0.hasPrefix("Accepted") || $0.hasPrefix("Preferred")
      }
      #expect(
        !suites.isEmpty
          && suites.allSatisfy { $0.contains("TLSv1.3") && ($0.contains("GCM") || $0.contains("POLY1305")) },
        "\(suites)")
      print("security: sslscan on a sidecar: TLS 1.3 only, \(suites.count) AEAD suites")

      // Strict: the same plaintext call is refused; the meshed client still gets through.
      let strict = try labApply(lab, Self.backend("mtls: strict"))
      #expect(strict.status == 0, "\(strict.output)")
      #expect(
        eventually(10) {
          (try? labExec(lab, "b1", "curl", "-sf", "http://127.0.0.1:15000/config").output)?.contains("strict")
            == true
        })
      let refused = try labExec(
        lab, "outsider", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://\(b1):8080/")
      #expect(refused.output == "000", "plaintext refused: \(refused.output)")
      #expect(
        try mesh.metric(
          "b1", "weft_proxy_connections_total{direction=\"inbound\",outcome=\"plaintext-refused\"}")
          >= 1)
      let meshed = try echoCall(lab, "client", "http://100.64.0.1/", 10)
      #expect(meshed["statuses"] as? [String: Int] == ["200": 10], "\(meshed)")
      print(
        "security: strict refused the outsider (\(refused.output)), the meshed client got \(meshed["statuses"] ?? "?")"
      )
      // Access policy, enforced by b1's sidecar on the identity the caller's certificate names:
      // client may GET /api/*, c2 may do anything, nobody may touch /api/admin (DENY wins), and a
      // caller without a sidecar has no identity to be allowed by.
      try mesh.add("c2", host: 2, label: "app=c2", mesh: true)
      let permissive = try labApply(
        lab,
        Self.backend()
          + """

          ---
          apiVersion: weft/v1
          kind: AccessPolicy
          metadata: {name: backend-readers}
          spec:
            service: backend
            action: allow
            rules:
              - from: {identities: ["spiffe://weft.local/ns/blue/sa/client"]}
                to: {methods: [GET], paths: ["/api/*"]}
              - from: {identities: ["spiffe://weft.local/ns/blue/sa/c2"]}
          ---
          apiVersion: weft/v1
          kind: AccessPolicy
          metadata: {name: backend-no-admin}
          spec:
            service: backend
            action: deny
            rules: [{to: {paths: [/api/admin, /api/admin/*]}}]
          """)
      #expect(permissive.status == 0, "\(permissive.output)")
      func status(_ from: String, _ method: String, _ url: String) throws -> String {
        // Port 82 is HTTP/2: held to the policies stream by stream on b1's side.
        let h2 = url.contains(":82/") ? ["--http2-prior-knowledge"] : []
        return try weftArgs(
          [
            "lab", "exec", lab, from, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X",
            method,
          ]
            + h2 + [url]
        ).output
      }
      #expect(
        eventually(15) {
          (try? labExec(lab, "b1", "curl", "-sf", "http://127.0.0.1:15000/config").output)?.contains(
            "backend-no-admin")
            == true && (try? status("client", "GET", "http://100.64.0.1/other")) == "403"
        }, "the policies reached the sidecars")
      let matrix: [(String, String, String, String)] = [
        ("client", "GET", "http://100.64.0.1/api/items", "200"),
        ("client", "POST", "http://100.64.0.1/api/items", "403"),
        ("client", "GET", "http://100.64.0.1/other", "403"),
        ("client", "GET", "http://100.64.0.1/api/admin", "403"),
        ("c2", "GET", "http://100.64.0.1/other", "200"), ("c2", "POST", "http://100.64.0.1/items", "200"),
        ("c2", "GET", "http://100.64.0.1/api/admin/users", "403"),
        ("outsider", "GET", "http://\(b1):8080/api/items", "403"),
        ("client", "GET", "http://100.64.0.1:82/api/items", "200"),
        ("client", "POST", "http://100.64.0.1:82/api/items", "403"),
        ("client", "GET", "http://100.64.0.1:82/api/admin", "403"),
        ("c2", "GET", "http://100.64.0.1:82/other", "200"),
        ("c2", "GET", "http://100.64.0.1:82/api/admin/users", "403"),
      ]
      var seen: [String] = []
      for (from, method, url, expected) in matrix {
        let got = try status(from, method, url)
        seen.append(
          "\(from) \(method) \(url.contains(":82/") ? "h2 " : "")\(url.split(separator: "/", maxSplits: 3).last ?? ""): \(got)"
        )
        #expect(got == expected, "\(from) \(method) \(url): \(got), expected \(expected)")
      }
      let body = try labExec(lab, "client", "curl", "-s", "http://100.64.0.1/api/admin").output
      #expect(body.contains("backend-no-admin"), "the 403 names the policy: \(body)")
      // TCP has no method or path: the DENY rule on /api/admin cannot be ruled out, so it refuses
      // every TCP connection (the safe side), c2's included; weft policy check says so too.
      let clientTCP = try labExec(
        lab, "client", "/usr/bin/python3", probe("tcp-call.py"), "100.64.0.1", "83", "x")
      let c2TCP = try labExec(lab, "c2", "/usr/bin/python3", probe("tcp-call.py"), "100.64.0.1", "83", "x")
      #expect(
        !clientTCP.output.contains("b1") && !c2TCP.output.contains("b1"),
        "\(clientTCP.output) / \(c2TCP.output)")
      #expect(
        try mesh.metric("b1", "weft_proxy_policy_total{source=\"b1\",destination=\"backend\",kind=\"deny\"}")
          >= 6)
      // weft policy check explains the same decision from the controller's view.
      let control = try #require(Lab.load(lab)?.control)
      let check = try weftArgs([
        "policy", "check", "--from", "client", "--to", "backend", "--method", "GET", "--path", "/api/admin",
        "--controller", try #require(control.loopbackURL), "--token", control.token, "--ca",
        try #require(control.ca),
      ])
      #expect(
        check.status == 1 && check.output.contains("DENY") && check.output.contains("backend-no-admin"),
        "\(check.output)")
      let tcpCheck = try weftArgs([
        "policy", "check", "--from", "c2", "--to", "backend", "--controller",
        try #require(control.loopbackURL),
        "--token", control.token, "--ca", try #require(control.ca),
      ])
      #expect(
        tcpCheck.status == 1 && tcpCheck.output.contains("a TCP connection")
          && tcpCheck.output.contains("backend-no-admin"),
        "\(tcpCheck.output)")
      let allowed = try weftArgs([
        "policy", "check", "--from", "c2", "--to", "backend", "--method", "POST", "--path", "/items",
        "--controller", try #require(control.loopbackURL), "--token", control.token, "--ca",
        try #require(control.ca),
      ])
      #expect(
        allowed.status == 0 && allowed.output.contains("ALLOW policy 'backend-readers' rule 1"),
        "\(allowed.output)")
      print("security: policy matrix \(seen)")
    }
  }
}
