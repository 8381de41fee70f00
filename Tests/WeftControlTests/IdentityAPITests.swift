import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import WeftControl
import WeftIdentity
import WeftManifest
import WeftModel
import WeftStore
import X509

@Suite("controller CA: workload certificates from signing requests")
struct IdentityAPITests {
  func controller() throws -> Controller {
    let dir = try makeStoreDirectory()
    let (authority, bundle) = try CAStore(directory: dir.appendingPathComponent("ca"))
      .loadOrCreate(trustDomain: "weft.test")
    return Controller(
      store: try SQLiteStore(path: dir.appendingPathComponent("weft.db").path),
      issuer: IdentityIssuer(authority: authority, bundle: bundle, lifetime: 3600))
  }

  func request(_ workload: String) throws -> SigningRequest {
    let (_, csr) = try WorkloadCredentials.request(for: workload)
    return SigningRequest(workload: workload, csr: try csr.serializeAsPEM().pemString)
  }

  @Test func aWorkloadGetsTheIdentityItsLabelsAndServicesGiveIt() async throws {
    let controller = try controller()
    _ = try await controller.apply(try Manifest.parse(networksYAML + "\n---\n" + serviceYAML("backend")))
    _ = try await controller.join(host: "host1", spec: HostSpec(underlay: "198.18.0.1"))
    _ = try await controller.apply([
      try workload("b1", labels: ["app": "backend"], address: "100.96.1.2"),
      try workload("c1", labels: ["app": "client"], address: "100.96.1.3"),
      try workload(
        "j1", labels: ["app": "job", "namespace": "batch", "serviceAccount": "nightly"], address: nil),
    ])
    let trust = try await controller.trust()
    #expect(trust.trustDomain == "weft.test")
    let bundle = try TrustBundle(pem: trust.bundle)
    for (name, expected) in [
      ("b1", "spiffe://weft.test/ns/blue/sa/backend"), ("c1", "spiffe://weft.test/ns/blue/sa/c1"),
      ("j1", "spiffe://weft.test/ns/batch/sa/nightly"),
    ] {
      let signed = try await controller.sign(try request(name))
      #expect(signed.identity == expected)
      let chain = try TrustBundle.certificates(pem: signed.chain, what: "chain")
      #expect(try await bundle.verify(chain).uri == expected, "\(name)")
      #expect(abs(signed.notAfter.timeIntervalSinceNow - 3600) < 5, "the configured lifetime")
    }
  }

  @Test func badRequestsAreRefusedByNameOverHTTP() async throws {
    let controller = try controller()
    _ = try await controller.apply(try Manifest.parse(networksYAML))
    _ = try await controller.join(host: "host1", spec: HostSpec(underlay: "198.18.0.1"))
    _ = try await controller.apply([try workload("b1", labels: ["app": "backend"], address: nil)])
    let auth: HTTPFields = [.authorization: "Bearer s3cret", .contentType: "application/json"]
    try await makeApp(controller).test(.router) { client in
      let good = try JSONEncoder().encode(try request("b1"))
      try await client.execute(
        uri: "/v1/identity/sign", method: .post, headers: auth, body: ByteBuffer(data: good)
      ) { response in
        #expect(response.status == .ok)
        let signed = try JSONDecoder().decode(SignedIdentity.self, from: Data(buffer: response.body))
        #expect(
          signed.identity == "spiffe://weft.test/ns/blue/sa/b1" && signed.chain.contains("BEGIN CERTIFICATE"))
      }
      let missing = try JSONEncoder().encode(try request("nobody"))
      try await client.execute(
        uri: "/v1/identity/sign", method: .post, headers: auth, body: ByteBuffer(data: missing)
      ) { response in
        #expect(response.status == .notFound)
        #expect(String(buffer: response.body).contains("workload/nobody not found"))
      }
      let garbled = try JSONEncoder().encode(SigningRequest(workload: "b1", csr: "-----BEGIN NONSENSE-----"))
      try await client.execute(
        uri: "/v1/identity/sign", method: .post, headers: auth, body: ByteBuffer(data: garbled)
      ) { response in
        #expect(response.status == .badRequest)
        #expect(String(buffer: response.body).contains("csr is not a PEM certificate request"))
      }
      try await client.execute(uri: "/v1/identity/trust", method: .get, headers: auth) { response in
        #expect(response.status == .ok && String(buffer: response.body).contains("BEGIN CERTIFICATE"))
      }
      try await client.execute(uri: "/v1/identity/trust", method: .get) { response in
        #expect(response.status == .unauthorized)
      }
    }
  }
}

@Suite("controller CA rotation: both roots trusted first, the new one signs after propagation")
struct CARotationTests {
  @Test func aRotationPropagatesThenSignsThenRetires() async throws {
    let dir = try makeStoreDirectory()
    let store = CAStore(directory: dir.appendingPathComponent("ca"))
    let (authority, bundle) = try store.loadOrCreate(trustDomain: "weft.test")
    let controller = Controller(
      store: try SQLiteStore(path: dir.appendingPathComponent("weft.db").path),
      issuer: IdentityIssuer(
        authority: authority, bundle: bundle, lifetime: 3600, store: store, propagation: 90))
    _ = try await controller.apply(try Manifest.parse(networksYAML))
    _ = try await controller.join(host: "host1", spec: HostSpec(underlay: "198.18.0.1"))
    _ = try await controller.apply([try workload("b1", labels: ["app": "backend"], address: nil)])
    func sign(at now: Date) async throws -> Certificate {
      let (_, csr) = try WorkloadCredentials.request(for: "b1")
      let signed = try await controller.sign(
        SigningRequest(workload: "b1", csr: try csr.serializeAsPEM().pemString), now: now)
      return try TrustBundle.certificates(pem: signed.chain, what: "chain")[0]
    }
    let t0 = Date() - 200  // so that what is signed "after the propagation" is valid now
    let before = try await sign(at: t0)
    #expect(before.issuer == authority.certificate.subject)

    await #expect(throws: ControlError.self, "a host may not rotate the CA") {
      _ = try await controller.rotateCA(as: .host("host1"), now: t0)
    }
    let rotated = try await controller.rotateCA(as: .admin("op"), now: t0)
    #expect(rotated.roots.count == 2 && rotated.roots[1] == authority.certificate.subject.description)
    #expect(abs(rotated.signsFrom.timeIntervalSince(t0) - 90) < 1)
    let trust = try TrustBundle(pem: try await controller.trust().bundle)
    #expect(trust.roots.count == 2, "the bundle trusts both roots at once")
    let during = try await sign(at: t0 + 30)
    #expect(
      try await TrustBundle(roots: [authority.certificate]).verify([during]).uri.hasSuffix("/b1"),
      "the old CA signs while the bundle spreads")
    let after = try await sign(at: t0 + 91)
    let (fresh, _) = try store.loadOrCreate(trustDomain: "weft.test")
    #expect(fresh.certificate != authority.certificate)
    let onlyNew = TrustBundle(roots: [fresh.certificate])
    #expect(
      try await onlyNew.verify([after]).uri == "spiffe://weft.test/ns/blue/sa/b1", "then the new one signs")
    #expect(try await trust.verify([after]).uri == "spiffe://weft.test/ns/blue/sa/b1")
    #expect(try await trust.verify([before]).uri == "spiffe://weft.test/ns/blue/sa/b1")

    // Retiring the old root early would strand certificates it signed: refused unless forced.
    await #expect(throws: ControlError.self) {
      _ = try await controller.retireCA(as: .admin("op"), now: t0 + 600)
    }
    let retired = try await controller.retireCA(as: .admin("op"), now: t0 + 90 + 3601)
    #expect(retired.roots.count == 1 && retired.retireAfter == nil)
    let left = try TrustBundle(pem: try await controller.trust().bundle)
    #expect(try await left.verify([after]).uri == "spiffe://weft.test/ns/blue/sa/b1")
    await #expect(throws: (any Error).self, "the old root's certificates no longer verify") {
      _ = try await left.verify([before])
    }
    // The rotation is on disk: a restarted controller signs with the new CA.
    let (reloaded, reloadedBundle) = try store.loadOrCreate(trustDomain: "weft.test")
    #expect(reloaded.certificate.subject.description == retired.signer && reloadedBundle.roots.count == 1)
  }
}
