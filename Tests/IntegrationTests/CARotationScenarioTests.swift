import Foundation
import Testing
import WeftLab

extension MeshLabScenarios {
  /// A mesh CA rotation through a running lab: certificates that last 54 s (renewed every 27 s),
  /// a rotated-out CA that signs for 55 s more. While a client keeps calling (HTTP over the
  /// sidecars' pooled mesh connections, and an opaque TCP call each round, which is a new mesh
  /// connection with a full handshake), the operator rotates, the sidecars come to trust both
  /// roots, then hold certificates of the new one, the old root is retired once nothing it signed
  /// can still be valid, and the sidecars drop it. No call fails at any step.
  @Suite("identity: a CA rotation crosses live sidecars without a failed call", .serialized)
  struct CARotationScenarioTests {
    let lab = "cr\(getpid() % 100_000)"

    @Test func aRotationAndRetirementDropNoCall() async throws {
      let mesh = try MeshLab(
        self.lab, hosts: 2,
        spec: """
            ports:
              - {port: 80, targetPort: 8080, protocol: http}
              - {port: 83, targetPort: 8083, protocol: tcp}
          """,
        up: ["--certificate-hours", "0.015", "--ca-propagation", "55"])
      defer { mesh.tearDown() }
      let lab = mesh.name
      try mesh.add("client", host: 1, label: "app=client", mesh: true)
      try mesh.add("b1", host: 2, label: "app=backend", mesh: true, streams: true)
      let control = try #require(Lab.load(lab)?.control)
      let api = [
        "--controller", try #require(control.loopbackURL), "--token", control.token, "--ca",
        try #require(control.ca),
      ]
      /// `weft ca ARGS`: the exit status, the signer's subject and the roots' subjects.
      func ca(_ arguments: [String]) throws -> (
        status: Int32, signer: String, roots: [String], output: String
      ) {
        let run = try weftArgs(["ca"] + arguments + api)
        var signer = ""
        var roots: [String] = []
        for line in run.output.split(separator: "\n") {
          let text = String(line)
          if text.hasPrefix("signer:") {
            signer = String(text.dropFirst("signer:".count).trimmingCharacters(in: .whitespaces))
            if let cut = signer.range(of: " (signs from") { signer = String(signer[..<cut.lowerBound]) }
          } else if text.hasPrefix("root "), let colon = text.firstIndex(of: ":") {
            roots.append(text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces))
          }
        }
        return (run.status, signer, roots, run.output)
      }
      /// A sidecar's certificate issuer and trusted roots, from its admin page `/identity`.
      func identity(_ workload: String) -> (issuer: String, roots: [String])? {
        guard
          let text = try? labExec(lab, workload, "curl", "-sf", "http://127.0.0.1:15000/identity").output,
          let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
          let issuer = object["issuer"] as? String, let roots = object["roots"] as? [String]
        else { return nil }
        return (issuer, roots)
      }
      // The client's calls, a round at a time: 3 HTTP requests and one opaque TCP exchange.
      var rounds = 0
      var failures: [String] = []
      func call() {
        rounds += 1
        let http = (try? echoCall(lab, "client", "http://100.64.0.1/", 3, keepAlive: true))?["statuses"]
        if (http as? [String: Int]) != ["200": 3] {
          failures.append("round \(rounds) http: \(http ?? "none")")
        }
        let tcp =
          (try? labExec(lab, "client", "/usr/bin/python3", probe("tcp-call.py"), "100.64.0.1", "83", "r"))?
          .output.trimmingCharacters(in: .whitespacesAndNewlines)
        if tcp != "b1 r" { failures.append("round \(rounds) tcp: \(tcp ?? "none")") }
      }
      /// Calls until `done` holds (checked after each round) or `seconds` pass.
      func calling(_ seconds: Double, until done: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
          call()
          if done() { return true }
          Thread.sleep(forTimeInterval: 0.5)
        }
        return false
      }
      let sidecars = ["client", "b1"]
      let before = try ca(["show"])
      #expect(before.status == 0 && before.roots == [before.signer], "\(before.output)")
      #expect(
        calling(30) { sidecars.allSatisfy { identity($0)?.issuer == before.signer } },
        "the sidecars hold certificates of the first root")
      #expect(failures.isEmpty, "before the rotation: \(failures)")

      // Rotate: the new root is trusted at once, the old CA signs on for the propagation time.
      let rotated = try ca(["rotate"])
      let newRoot = rotated.signer
      #expect(
        rotated.status == 0 && newRoot != before.signer && Set(rotated.roots) == [newRoot, before.signer],
        "\(rotated.output)")
      #expect(
        calling(60) { sidecars.allSatisfy { Set(identity($0)?.roots ?? []) == [newRoot, before.signer] } },
        "every sidecar trusts both roots (agents re-read every 20 s, sidecars every 30 s)")
      #expect(
        calling(120) { sidecars.allSatisfy { identity($0)?.issuer == newRoot } },
        "every sidecar renewed onto the new CA once it signs")
      // The old root may still have signed a certificate that is valid: retiring it is refused.
      let early = try ca(["retire"])
      #expect(early.status != 0 && early.output.contains("force"), "\(early.output)")
      var retired: (status: Int32, signer: String, roots: [String], output: String)?
      #expect(
        calling(90) {
          let attempt = try? ca(["retire"])
          if attempt?.status == 0 { retired = attempt }
          return retired != nil
        }, "retired without force once the old root's last certificate expired")
      #expect(retired?.roots == [newRoot], "\(retired?.output ?? "")")
      #expect(
        calling(60) { sidecars.allSatisfy { identity($0)?.roots == [newRoot] } },
        "every sidecar trusts the new root alone")
      call()
      #expect(failures.isEmpty, "\(failures.count) failed of \(rounds) rounds: \(failures)")
      print("ca rotation: \(rounds) rounds of calls through rotate, renew, retire; \(failures.count) failed")
    }
  }
}
