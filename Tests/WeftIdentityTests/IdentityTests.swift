import Foundation
import Testing
import X509

@testable import WeftIdentity

@Suite("identity: SPIFFE names, the CA, verification, rotation")
struct IdentityTests {
  let web = SPIFFEID(trustDomain: "weft.test", namespace: "default", serviceAccount: "web")!

  @Test func spiffeIdentitiesParseAndPrintTheSameWay() {
    let id = SPIFFEID(uri: "spiffe://weft.test/ns/blue/sa/backend")
    #expect(id?.namespace == "blue" && id?.serviceAccount == "backend" && id?.trustDomain == "weft.test")
    #expect(id?.uri == "spiffe://weft.test/ns/blue/sa/backend")
    for bad in [
      "http://weft.test/ns/a/sa/b", "spiffe://Weft.test/ns/a/sa/b", "spiffe://weft.test/ns/a/sa/",
      "spiffe://weft.test/ns/a/sa/b/c", "spiffe://weft.test/sa/b/ns/a", "spiffe://weft.test/ns/../sa/b",
      "spiffe://weft.test/ns/a b/sa/c", "spiffe:///ns/a/sa/b",
    ] {
      #expect(SPIFFEID(uri: bad) == nil, "\(bad)")
    }
  }

  func issue(_ ca: CertificateAuthority, _ identity: SPIFFEID, now: Date = Date()) throws
    -> WorkloadCredentials
  {
    let (key, request) = try WorkloadCredentials.request(for: identity.serviceAccount)
    return try WorkloadCredentials(key: key, chain: ca.issue(request, for: identity, now: now).chain)
  }

  @Test func aWorkloadCertificateVerifiesAndNamesItsIdentity() async throws {
    let now = Date()
    let ca = try CertificateAuthority.generate(trustDomain: "weft.test", now: now)
    let bundle = TrustBundle(roots: [ca.certificate])
    let credentials = try issue(ca, self.web, now: now)
    #expect(try await bundle.verify(credentials.chain) == self.web)
    try await bundle.verify(credentials.chain, expecting: self.web)
    let leaf = credentials.chain[0]
    #expect(leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore) == 86_400 + 60, "24 h, a minute early")
    #expect(abs(credentials.renewAt.timeIntervalSince(now.addingTimeInterval(43_200 - 30))) < 2, "half-way")
    let other = SPIFFEID(trustDomain: "weft.test", namespace: "default", serviceAccount: "db")!
    await #expect(throws: IdentityError(.wrongIdentity, "the peer is \(self.web), not \(other)")) {
      try await bundle.verify(credentials.chain, expecting: other)
    }
  }

  @Test func expiredEarlyForeignAndForgedCertificatesAreRefused() async throws {
    let now = Date()
    let ca = try CertificateAuthority.generate(trustDomain: "weft.test", now: now)
    let bundle = TrustBundle(roots: [ca.certificate])
    let credentials = try issue(ca, self.web, now: now)
    // Issued two days ago for a day; issued for an hour from now: both out of their validity.
    let expired = try issue(ca, self.web, now: now.addingTimeInterval(-2 * 86_400))
    let early = try issue(ca, self.web, now: now.addingTimeInterval(3600))
    for (chain, what) in [(expired.chain, "expired"), (early.chain, "not yet valid")] {
      do {
        _ = try await bundle.verify(chain)
        Issue.record("\(what) certificate accepted")
      } catch let error as IdentityError {
        #expect(error.code == .untrusted, "\(what): \(error)")
      }
    }
    // Another CA, same trust domain and identity: not trusted.
    let stranger = try CertificateAuthority.generate(trustDomain: "weft.test", now: now)
    let foreign = try issue(stranger, self.web, now: now)
    await #expect(throws: IdentityError.self) { try await bundle.verify(foreign.chain) }
    #expect(try await bundle.verify(credentials.chain) == self.web)
    // A request whose signature is not its key's is refused; so is another trust domain.
    let (_, request) = try WorkloadCredentials.request(for: "web")
    let (otherKey, _) = try WorkloadCredentials.request(for: "web")
    let forged = try CertificateSigningRequest(
      version: .v1, subject: request.subject, publicKey: otherKey.publicKey, attributes: request.attributes,
      signatureAlgorithm: request.signatureAlgorithm, signature: request.signature)
    #expect(throws: IdentityError.self) { try ca.issue(forged, for: self.web, now: now) }
    let elsewhere = SPIFFEID(trustDomain: "other.test", namespace: "default", serviceAccount: "web")!
    #expect(throws: IdentityError.self) { try ca.issue(request, for: elsewhere, now: now) }
    // Credentials only pair a key with its own certificate.
    #expect(throws: IdentityError.self) { try WorkloadCredentials(key: otherKey, chain: credentials.chain) }
  }

  func scratch() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "weft-identity-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  @Test func theCAIsKeptAcrossRestartsWithItsKeyPrivate() throws {
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(at: dir) }
    let store = CAStore(directory: dir.appendingPathComponent("ca"))
    let (first, bundle) = try store.loadOrCreate(trustDomain: "weft.test")
    let (second, again) = try store.loadOrCreate(trustDomain: "weft.test")
    #expect(first.certificate == second.certificate && bundle == again && bundle.roots == [first.certificate])
    let mode =
      try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("ca/ca-key.pem").path)[
        .posixPermissions] as? Int
    #expect(mode == 0o600)
    // Half a CA is refused with what is missing named.
    try FileManager.default.removeItem(at: dir.appendingPathComponent("ca/ca-key.pem"))
    #expect(throws: IdentityError.self) { try store.loadOrCreate(trustDomain: "weft.test") }
  }

  @Test func aRotationTrustsBothRootsUntilTheOldOneIsRetired() async throws {
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(at: dir) }
    let store = CAStore(directory: dir)
    let now = Date()
    let (old, _) = try store.loadOrCreate(trustDomain: "weft.test", now: now)
    let before = try issue(old, self.web, now: now)
    let (new, both) = try store.rotate(trustDomain: "weft.test", now: now)
    #expect(both.roots.count == 2 && new.certificate != old.certificate)
    let after = try issue(new, self.web, now: now)
    #expect(try await both.verify(before.chain) == self.web)
    #expect(try await both.verify(after.chain) == self.web)
    let retired = try store.retire(trustDomain: "weft.test")
    #expect(retired.roots == [new.certificate])
    #expect(try await retired.verify(after.chain) == self.web)
    await #expect(throws: IdentityError.self) { try await retired.verify(before.chain) }
  }

  /// An operator's own root and intermediate, made by openssl: Weft signs with the
  /// intermediate, and openssl itself accepts what Weft issued.
  @Test func anOperatorIntermediateSignsAndOpenSSLAgrees() async throws {
    let dir = try scratch()
    defer { try? FileManager.default.removeItem(at: dir) }
    func openssl(_ args: [String]) throws -> (Int32, String) {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
      process.arguments = args
      process.currentDirectoryURL = dir
      let pipe = Pipe()
      process.standardOutput = pipe
      process.standardError = pipe
      try process.run()
      let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      process.waitUntilExit()
      return (process.terminationStatus, output)
    }
    let ext =
      "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
    try ext.write(to: dir.appendingPathComponent("ca.ext"), atomically: true, encoding: .utf8)
    for step in [
      ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "root.key"],
      [
        "req", "-x509", "-new", "-key", "root.key", "-subj", "/O=Operator/CN=Operator Root", "-days", "30",
        "-out", "root.pem", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ],
      ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca-key.pem"],
      ["req", "-new", "-key", "ca-key.pem", "-subj", "/O=Operator/CN=Weft Intermediate", "-out", "ca.csr"],
      [
        "x509", "-req", "-in", "ca.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial", "-days",
        "20", "-extfile", "ca.ext", "-out", "ca.pem",
      ],
    ] {
      let (status, output) = try openssl(step)
      #expect(status == 0, "openssl \(step.joined(separator: " ")): \(output)")
    }
    try FileManager.default.copyItem(
      at: dir.appendingPathComponent("root.pem"), to: dir.appendingPathComponent("intermediates.pem"))
    let (ca, bundle) = try CAStore(directory: dir).loadOrCreate(trustDomain: "weft.test")
    #expect(bundle.roots.count == 1 && bundle.roots[0].subject.description.contains("Operator Root"))
    let credentials = try issue(ca, self.web)
    #expect(credentials.chain.count == 3)
    #expect(try await bundle.verify(credentials.chain) == self.web)
    try credentials.chain[0].serializeAsPEM().pemString.write(
      to: dir.appendingPathComponent("leaf.pem"), atomically: true, encoding: .utf8)
    let (status, output) = try openssl([
      "verify", "-CAfile", "root.pem", "-untrusted", "ca.pem", "-purpose", "sslclient", "leaf.pem",
    ])
    #expect(status == 0 && output.contains("leaf.pem: OK"), "\(output)")
    let (_, text) = try openssl(["x509", "-in", "leaf.pem", "-noout", "-ext", "subjectAltName"])
    #expect(text.contains("URI:spiffe://weft.test/ns/default/sa/web"), "\(text)")
  }
}
