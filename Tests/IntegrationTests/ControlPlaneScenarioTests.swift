import Foundation
import Testing
import WeftLab
import WeftLinux

/// Runs a program with arguments and captures its status and output (stdout and stderr).
func runTool(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: path)
  p.arguments = args
  let pipe = Pipe()
  p.standardOutput = pipe
  p.standardError = pipe
  try p.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The locked control plane in a real lab: the controller's API is TLS 1.3 only (sslscan), the
/// agents joined with single-use bootstrap tokens and hold host certificates, a host cannot
/// touch another's objects, a revoked host is locked out, secrets on disk are 0600.
@Suite("locked control plane in a lab: TLS API, host certificates, revocation", .serialized)
struct ControlPlaneScenarioTests {
  let lab = "cp\(getpid() % 100_000)"

  init() {
    for old in Lab.list() where old.name.hasPrefix("cp") && old.name != self.lab {
      _ = try? Lab.down(name: old.name)
    }
    _ = try? Lab.down(name: self.lab)
  }

  @Test func agentsUseHostCertificatesAndTheAPIIsTLS13Only() async throws {
    #expect(try weftArgs(["lab", "up", lab, "--hosts", "2"]).status == 0)
    defer { _ = try? Lab.down(name: lab) }
    let control = try #require(Lab.load(lab)?.control)
    let url = try #require(control.loopbackURL)
    let ca = try #require(control.ca)
    let dir = Lab.directory(lab)
    let port = try #require(url.split(separator: ":").last.map(String.init))

    // sslscan, an independent TLS client, against the API: TLS 1.3 only, AEAD suites only.
    let scan = try runTool("/usr/bin/sslscan", ["--no-colour", "--no-heartbleed", "127.0.0.1:\(port)"]).output
    for line in [
      "TLSv1.3   enabled", "TLSv1.2   disabled", "TLSv1.1   disabled", "TLSv1.0   disabled",
      "SSLv3     disabled",
    ] {
      #expect(scan.contains(line), "sslscan: \(line) in \(scan)")
    }
    let suites = scan.split(separator: "\n").filter { $0.hasPrefix("Accepted") || $0.hasPrefix("Preferred") }
    #expect(
      !suites.isEmpty
        && suites.allSatisfy { $0.contains("TLSv1.3") && ($0.contains("GCM") || $0.contains("POLY1305")) },
      "\(suites)")
    // Plain HTTP gets nowhere; TLS without credentials gets 401.
    let plain = try runTool(
      "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/v1/hosts"])
    #expect(plain.output != "200" && plain.output != "401", "plain HTTP: \(plain.output)")
    func curl(_ args: [String]) throws -> String {
      try runTool("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca] + args)
        .output
    }
    #expect(try curl(["\(url)/v1/hosts"]) == "401")

    // The agents joined with their bootstrap tokens (used up now) and hold host certificates.
    let tokens = try weftArgs(["token", "list", "--controller", url, "--token", control.token, "--ca", ca])
    #expect(tokens.status == 0 && !tokens.output.contains("bootstrap"), "single use: \(tokens.output)")
    let host1 = ["--cert", "\(dir)/host1/host.pem", "--key", "\(dir)/host1/host-key.pem"]
    let host2 = ["--cert", "\(dir)/host2/host.pem", "--key", "\(dir)/host2/host-key.pem"]
    #expect(try curl(host1 + ["\(url)/v1/networks"]) == "200")
    #expect(try curl(host1 + ["-X", "POST", "\(url)/v1/hosts/host1/heartbeat"]) == "200")
    // One agent cannot modify another host's objects.
    #expect(try curl(host1 + ["-X", "POST", "\(url)/v1/hosts/host2/heartbeat"]) == "403")
    #expect(try curl(host1 + ["-X", "DELETE", "\(url)/v1/hosts/host2"]) == "403")
    let workload =
      #"{"items":[{"apiVersion":"weft/v1","kind":"Workload","metadata":{"name":"w"},"spec":{"network":"blue","host":"host2"}}]}"#
    #expect(
      try curl(
        host1 + ["-X", "POST", "-H", "Content-Type: application/json", "-d", workload, "\(url)/v1/apply"])
        == "403")

    // Revoked: host2's certificate reads and writes nothing; host1 carries on.
    let revoke = try weftArgs([
      "certificate", "revoke", "--host", "host2", "--controller", url, "--token", control.token, "--ca", ca,
    ])
    #expect(revoke.status == 0 && revoke.output.contains("1 certificate(s) revoked"), "\(revoke.output)")
    #expect(try curl(host2 + ["\(url)/v1/networks"]) == "401")
    #expect(try curl(host2 + ["-X", "POST", "\(url)/v1/hosts/host2/heartbeat"]) == "401")
    #expect(try curl(host1 + ["\(url)/v1/networks"]) == "200")
    let log = try String(contentsOfFile: "\(dir)/controller.log", encoding: .utf8)
    #expect(log.contains("auth: refused") && log.contains("host/host2"), "failures are logged")

    // Secrets on disk are 0600; the lab's token is nowhere in the controller's files.
    for file in [
      "controller/auth.json", "controller/ca/ca-key.pem", "controller/control-ca/ca-key.pem",
      "host1/host-key.pem",
    ] {
      let mode = try FileManager.default.attributesOfItem(atPath: "\(dir)/\(file)")[.posixPermissions] as? Int
      #expect(mode == 0o600, "\(file): \(String(mode ?? 0, radix: 8))")
    }
    let registry = try String(contentsOfFile: "\(dir)/controller/auth.json", encoding: .utf8)
    #expect(!registry.contains(control.token))
    print(
      "control plane: sslscan \(suites.count) TLS 1.3 AEAD suites; host1 403 on host2's objects; revoked host2 401"
    )
  }
}
