import Foundation
import WeftClient
import WeftControl
import WeftIdentity
import WeftModel
import WeftProxy
import X509

/// The certificates of one host's meshed workloads: for each, a key made here and a
/// certificate the controller's CA signed from a request for it, renewed half-way through its
/// life. The key goes to the workload's sidecar over the agent's local socket and nowhere else.
public actor WorkloadCertificates {
  private let client: ControlClient
  private var issued: [String: ProxyIdentity] = [:]
  private var trust: (value: MeshTrust, at: Date)?

  /// Certificates signed through `client`.
  public init(client: ControlClient) { self.client = client }

  /// The mesh's trust domain, once the controller has said it (nil while it runs without a CA
  /// or cannot be reached).
  public func trustDomain() async -> String? { try? await self.currentTrust().trustDomain }

  /// Credentials for `workload`: the ones held while they are not due for renewal (with the
  /// bundle as the controller has it now), else new ones.
  public func credentials(for workload: String, now: Date = Date()) async throws -> ProxyIdentity {
    let trust = try await self.currentTrust()
    if var held = self.issued[workload], now < held.renewAt {
      held.bundle = trust.bundle
      return held
    }
    let (key, request) = try WorkloadCredentials.request(for: workload)
    let signed = try await self.client.sign(
      SigningRequest(workload: workload, csr: try request.serializeAsPEM().pemString))
    let chain = try TrustBundle.certificates(pem: signed.chain, what: "signed chain")
    let credentials = try WorkloadCredentials(key: key, chain: chain)
    let identity = ProxyIdentity(
      identity: signed.identity, chain: signed.chain, key: try credentials.pem().key, bundle: signed.bundle,
      renewAt: credentials.renewAt)
    self.issued[workload] = identity
    return identity
  }

  /// Forgets a workload that left (its key with it).
  public func forget(_ workload: String) { self.issued[workload] = nil }

  /// The trust domain and bundle, asked again after 20 s (a CA rotation reaches sidecars so).
  private func currentTrust(now: Date = Date()) async throws -> MeshTrust {
    if let trust, now.timeIntervalSince(trust.at) < 20 { return trust.value }
    let fresh = try await self.client.trust()
    self.trust = (fresh, now)
    return fresh
  }
}
