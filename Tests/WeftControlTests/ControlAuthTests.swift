import Foundation
import Hummingbird
import HummingbirdTLS
import HummingbirdTesting
import NIOSSL
import Synchronization
import Testing
import WeftAgent
import WeftClient
import WeftControl
import WeftIdentity
import WeftManifest
import WeftModel
import WeftStore
import X509

/// A controller served over TLS as `weft controller` serves it: a control-plane CA, a registry
/// in a file, one operator token.
struct SecuredController {
  let dir: URL
  let controller: Controller
  let auth: ControlAuth
  let pki: ControlPlanePKI
  let log = LogLines()
  static let adminToken = "operator-secret"

  init(limiter: FailureLimiter = FailureLimiter()) async throws {
    self.dir = try makeStoreDirectory()
    self.controller = Controller(store: try SQLiteStore(path: dir.appendingPathComponent("weft.db").path))
    let (ca, _) = try CAStore(directory: dir.appendingPathComponent("control-ca")).loadOrCreate(
      trustDomain: "weft.test")
    self.pki = ControlPlanePKI(authority: ca)
    let log = self.log
    self.auth = ControlAuth(
      registry: try AuthRegistry(
        path: dir.appendingPathComponent("auth.json").path, operatorTokens: [Self.adminToken]),
      pki: self.pki, clientCertificateLifetime: 3600, limiter: limiter,
      log: { line in log.lines.withLock { $0.append(line) } })
    _ = try await controller.apply(try Manifest.parse(networksYAML))
  }

  var caPEM: String { try! self.pki.authority.certificate.serializeAsPEM().pemString }

  /// Runs `body` against the live TLS server with its base URL.
  func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
    let tls = try self.pki.serverTLSConfiguration(names: ["127.0.0.1", "localhost"])
    let app = Application(
      router: ControlServer.router(controller: self.controller, auth: self.auth),
      server: try .tls(.http1(), tlsConfiguration: tls),
      configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    try await app.test(.live) { client in try await body("https://127.0.0.1:\(client.port!)") }
  }

  func admin(_ url: String) throws -> ControlClient {
    try ControlClient(baseURL: url, credentials: ClientCredentials(token: Self.adminToken, ca: self.caPEM))
  }

  /// Bootstraps `host` with a fresh token and returns a client holding its certificate.
  func host(_ name: String, url: String) async throws -> ControlClient {
    let token = try await self.admin(url).createToken(TokenRequest(role: .bootstrap, host: name))
    let credentials = try await HostCredentials(
      directory: self.dir.appendingPathComponent(name).path, host: name
    ).obtain(controller: url, bootstrapToken: token.token, ca: self.caPEM)
    return try ControlClient(baseURL: url, credentials: credentials)
  }
}

/// Lines logged, shared with the logging closure.
final class LogLines: Sendable {
  let lines = Mutex<[String]>([])
}

/// The status of the error `body` throws, or nil when it succeeds.
func status(_ body: () async throws -> Void) async -> Int? {
  do {
    try await body()
    return nil
  } catch let e as ControlError {
    return e.status
  } catch {
    return -1
  }
}

@Suite("locked control plane: TLS, tokens, host certificates, authorization")
struct ControlAuthTests {
  @Test func bootstrapTokensAreSingleUseBoundAndExpiring() async throws {
    let secured = try await SecuredController()
    try await secured.run { url in
      let admin = try secured.admin(url)
      let made = try await admin.createToken(TokenRequest(role: .bootstrap, host: "host1"))
      #expect(
        made.record.usesLeft == 1 && made.record.expires != nil, "bootstrap defaults: once, within an hour")
      let (_, csr) = try WorkloadCredentials.request(for: "host1")
      let pem = try csr.serializeAsPEM().pemString
      let bootstrap = try ControlClient(
        baseURL: url, credentials: ClientCredentials(token: made.token, ca: secured.caPEM))
      // A bootstrap token reads nothing, and bootstraps only its own host.
      #expect(await status { _ = try await bootstrap.list(.network) } == 403)
      #expect(await status { _ = try await bootstrap.bootstrap(host: "host2", csr: pem) } == 403)
      let issued = try await bootstrap.bootstrap(host: "host1", csr: pem)
      #expect(issued.subject == "host/host1")
      let leaf = try TrustBundle.certificates(pem: issued.chain, what: "chain")[0]
      #expect(ControlSubject(certificate: leaf, trustDomain: "weft.test") == .host("host1"))
      #expect(try leaf.extensions.extendedKeyUsage.map(Array.init) == [.clientAuth], "never a server's")
      // Used once: gone.
      #expect(await status { _ = try await bootstrap.bootstrap(host: "host1", csr: pem) } == 401)
      #expect(try await admin.tokens().contains { $0.id == made.record.id } == false)
      // An expired token is refused with the reason.
      let (short, _) = try await secured.auth.registry.createToken(
        role: .bootstrap, ttl: 1, uses: 1, now: Date().addingTimeInterval(-5))
      let late = try ControlClient(
        baseURL: url, credentials: ClientCredentials(token: short, ca: secured.caPEM))
      do {
        _ = try await late.bootstrap(host: "host3", csr: pem)
        Issue.record("an expired token worked")
      } catch let e as ControlError {
        #expect(e.status == 401 && e.message.contains("expired"))
      }
    }
  }

  @Test func aHostWritesOnlyItsOwnObjectsAndLosesEverythingWhenRevoked() async throws {
    let secured = try await SecuredController()
    try await secured.run { url in
      let admin = try secured.admin(url)
      let host1 = try await secured.host("host1", url: url)
      let host2 = try await secured.host("host2", url: url)
      // Reads and its own writes work.
      #expect(try await host1.list(.network).items.count == 2)
      _ = try await host1.join(host: "host1", spec: HostSpec(underlay: "198.18.0.1"))
      _ = try await host2.join(host: "host2", spec: HostSpec(underlay: "198.18.0.2"))
      _ = try await host1.apply([try workload("w1", labels: [:], address: nil)])  // on host1
      var other = try workload("w2", labels: [:], address: nil)
      other.spec = try JSONValue(encoding: WorkloadSpec(network: "blue", host: "host2"))
      _ = try await host2.apply([other])
      // Everything of another host, and anything but workloads, is refused.
      #expect(await status { _ = try await host1.heartbeat(host: "host2") } == 403)
      #expect(
        await status { _ = try await host1.join(host: "host2", spec: HostSpec(underlay: "198.18.0.9")) }
          == 403)
      #expect(await status { _ = try await host1.apply([other]) } == 403)
      #expect(await status { _ = try await host1.delete(ResourceKey(kind: .workload, name: "w2")) } == 403)
      #expect(await status { _ = try await host1.delete(ResourceKey(kind: .host, name: "host2")) } == 403)
      #expect(
        await status { _ = try await host1.reportHealth(workload: "w2", service: "s", healthy: false) } == 403
      )
      #expect(
        await status {
          _ = try await host1.apply(
            try Manifest.parse(networksYAML.replacingOccurrences(of: "blue", with: "green")))
        }
          == 403)
      #expect(await status { _ = try await host1.tokens() } == 403)
      // Moving its own workload onto another host is a write to that host: refused.
      var moved = try workload("w1", labels: [:], address: nil)
      moved.spec = try JSONValue(encoding: WorkloadSpec(network: "blue", host: "host2"))
      #expect(await status { _ = try await host1.apply([moved]) } == 403)
      #expect(try await admin.get(ResourceKey(kind: .workload, name: "w2")) != nil, "nothing changed")
      // Revoked: it can neither read nor write; the other host carries on.
      #expect(try await admin.revoke("hosts", "host1").revoked == 1)
      #expect(await status { _ = try await host1.list(.network) } == 401)
      #expect(await status { _ = try await host1.heartbeat(host: "host1") } == 401)
      #expect(try await host2.list(.workload).items.count == 2)
      // No certificate and no token: refused; the failures are logged with their source.
      let nobody = try ControlClient(baseURL: url, credentials: ClientCredentials(ca: secured.caPEM))
      #expect(await status { _ = try await nobody.list(.network) } == 401)
      let lines = secured.log.lines.withLock { $0 }
      #expect(lines.contains { $0.contains("revoked or replaced") && $0.contains("127.0.0.1") })
      #expect(lines.contains { $0.contains("no token") })
    }
  }

  @Test func renewalKeepsTheOldCertificateUntilItExpiresAndAnotherCAIsRefused() async throws {
    let secured = try await SecuredController()
    try await secured.run { url in
      let host1 = try await secured.host("host1", url: url)
      let first = host1.credentials
      let files = HostCredentials(directory: secured.dir.appendingPathComponent("host1").path, host: "host1")
      try await files.renew(through: host1)
      #expect(host1.credentials.certificateChain != first.certificateChain, "the client switched")
      #expect(try await host1.list(.host).revision != nil)
      let old = try ControlClient(baseURL: url, credentials: first)
      #expect(try await old.list(.host).revision != nil, "the old certificate works until it expires")
      // The key is written 0600, and the registry holds hashes only.
      let keyMode =
        try FileManager.default.attributesOfItem(
          atPath: secured.dir.appendingPathComponent("host1/host-key.pem").path)[.posixPermissions] as? Int
      #expect(keyMode == 0o600)
      let made = try await secured.admin(url).createToken(TokenRequest(role: .admin, description: "ci"))
      let registryFile = secured.dir.appendingPathComponent("auth.json").path
      let text = try String(contentsOfFile: registryFile, encoding: .utf8)
      #expect(
        !text.contains(AccessToken(made.token)!.secret) && text.contains(AccessToken(made.token)!.secretHash))
      #expect(!text.contains(SecuredController.adminToken), "operator tokens are never written")
      #expect(
        try FileManager.default.attributesOfItem(atPath: registryFile)[.posixPermissions] as? Int == 0o600)
      // A made admin token works, and is gone once deleted.
      let ci = try ControlClient(
        baseURL: url, credentials: ClientCredentials(token: made.token, ca: secured.caPEM))
      #expect(try await ci.list(.network).items.count == 2)
      try await secured.admin(url).deleteToken(made.record.id)
      #expect(await status { _ = try await ci.list(.network) } == 401)
      // A client certificate of another CA never gets past the handshake.
      let foreign = ControlPlanePKI(authority: try CertificateAuthority.generate(trustDomain: "weft.test"))
      let (key, csr) = try WorkloadCredentials.request(for: "host1")
      let forged = try foreign.clientCertificate(csr, for: .host("host1"), lifetime: 3600)
      let intruder = try ControlClient(
        baseURL: url,
        credentials: ClientCredentials(
          certificateChain: try forged.pem(), privateKey: try key.serializeAsPEM().pemString,
          ca: secured.caPEM))
      #expect(
        await status { _ = try await intruder.list(.network) } == 0, "unreachable: the handshake failed")
      // And a client that does not trust the controller's CA will not talk to it.
      let misled = try ControlClient(
        baseURL: url,
        credentials: ClientCredentials(
          token: SecuredController.adminToken,
          ca: try foreign.authority.certificate.serializeAsPEM().pemString))
      #expect(await status { _ = try await misled.list(.network) } == 0)
    }
  }

  @Test func usersGetCertificatesAndFailingSourcesAreSlowedDown() async throws {
    let secured = try await SecuredController(limiter: FailureLimiter(burst: 3, interval: 60))
    try await secured.run { url in
      let admin = try secured.admin(url)
      let (key, csr) = try WorkloadCredentials.request(for: "alice")
      let issued = try await admin.userCertificate("alice", csr: try csr.serializeAsPEM().pemString)
      let alice = try ControlClient(
        baseURL: url,
        credentials: ClientCredentials(
          certificateChain: issued.chain, privateKey: try key.serializeAsPEM().pemString, ca: issued.ca))
      #expect(
        try await alice.createToken(TokenRequest(role: .bootstrap)).record.role == .bootstrap, "an operator")
      let guesser = try ControlClient(
        baseURL: url, credentials: ClientCredentials(token: "guess", ca: secured.caPEM))
      for _ in 0..<3 { #expect(await status { _ = try await guesser.list(.network) } == 401) }
      // Locked out: refused unseen, even with a good token, from the same address.
      #expect(await status { _ = try await guesser.list(.network) } == 429)
      #expect(await status { _ = try await admin.list(.network) } == 429)
    }
  }

  @Test func tokensParseAndFailuresRefillOverTime() {
    #expect(AccessToken("0123abcd.0123456789abcdef0123456789abcdef") != nil)
    for bad in [
      "", "short.0123456789abcdef0123456789abcdef", "0123abcd.0123",
      "0123abcd-0123456789abcdef0123456789abcdef",
    ] {
      #expect(AccessToken(bad) == nil, "\(bad)")
    }
    let made = AccessToken.generate()
    #expect(AccessToken(made.text) == made && made.secretHash.count == 64)
    var limiter = FailureLimiter(burst: 2, interval: 10)
    limiter.fail("a", now: 0)
    limiter.fail("a", now: 1)
    #expect(limiter.lockedOut("a", now: 1)! > 8)
    #expect(limiter.lockedOut("b", now: 1) == nil, "per source")
    #expect(limiter.lockedOut("a", now: 11) == nil, "one earned back after an interval")
    #expect(ControlSubject(uri: "spiffe://weft.test/weft/host/h1", trustDomain: "weft.test") == .host("h1"))
    #expect(ControlSubject(uri: "spiffe://other/weft/host/h1", trustDomain: "weft.test") == nil)
    #expect(ControlSubject(uri: "spiffe://weft.test/ns/a/sa/b", trustDomain: "weft.test") == nil)
    #expect(SPIFFEID(uri: ControlSubject.host("h1").uri(trustDomain: "weft.test")) == nil, "never a workload")
  }
}
