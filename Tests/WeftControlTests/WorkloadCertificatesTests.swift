import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import WeftAgent
import WeftClient
import WeftControl
import WeftIdentity
import WeftManifest
import WeftModel
import WeftStore

@Suite("agent certificates: kept until half-way, then renewed")
struct WorkloadCertificatesTests {
  @Test func aWorkloadsCertificateIsKeptThenRenewedHalfWay() async throws {
    let dir = try makeStoreDirectory()
    let (authority, bundle) = try CAStore(directory: dir.appendingPathComponent("ca")).loadOrCreate(
      trustDomain: "weft.test")
    let controller = Controller(
      store: try SQLiteStore(path: dir.appendingPathComponent("weft.db").path),
      issuer: IdentityIssuer(authority: authority, bundle: bundle, lifetime: 3600))
    _ = try await controller.apply(try Manifest.parse(networksYAML))
    _ = try await controller.join(host: "host1", spec: HostSpec(underlay: "198.18.0.1"))
    _ = try await controller.apply([try workload("b1", labels: ["app": "backend"], address: nil)])
    try await makeApp(controller).test(.live) { server in
      let certificates = WorkloadCertificates(
        client: ControlClient(baseURL: "http://127.0.0.1:\(server.port!)", token: "s3cret"))
      #expect(await certificates.trustDomain() == "weft.test")
      let now = Date()
      let first = try await certificates.credentials(for: "b1", now: now)
      #expect(first.identity == "spiffe://weft.test/ns/blue/sa/b1")
      #expect(abs(first.renewAt.timeIntervalSince(now) - 1800) < 60, "half of an hour")
      let again = try await certificates.credentials(for: "b1", now: now.addingTimeInterval(1700))
      #expect(again.chain == first.chain && again.key == first.key, "kept before half-way")
      let renewed = try await certificates.credentials(for: "b1", now: first.renewAt.addingTimeInterval(1))
      #expect(renewed.chain != first.chain && renewed.key != first.key, "a new key and certificate half-way")
      // Both certificates verify until the first expires: connections made with either keep going.
      let roots = try TrustBundle(pem: renewed.bundle)
      for pem in [first.chain, renewed.chain] {
        #expect(
          try await roots.verify(try TrustBundle.certificates(pem: pem, what: "chain")).uri == first.identity)
      }
    }
  }
}
