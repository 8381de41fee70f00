import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import WeftControl
import WeftIdentity
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
