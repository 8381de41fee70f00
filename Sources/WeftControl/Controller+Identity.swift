import Foundation
import WeftIdentity
import WeftModel
import X509

/// The controller's CA: the authority that signs workload certificates, the trust bundle the
/// sidecars verify against, and how long a certificate lasts.
public struct IdentityIssuer: Sendable {
  /// The signing CA.
  public var authority: CertificateAuthority
  /// The roots every sidecar trusts (two during a CA rotation).
  public var bundle: TrustBundle
  /// A workload certificate's lifetime, in seconds (default 24 h).
  public var lifetime: TimeInterval

  /// Creates an issuer.
  public init(authority: CertificateAuthority, bundle: TrustBundle, lifetime: TimeInterval = 86_400) {
    self.authority = authority
    self.bundle = bundle
    self.lifetime = lifetime
  }
}

/// `POST /v1/identity/sign`: a host agent asks for a certificate for one of its workloads.
public struct SigningRequest: Codable, Sendable, Hashable {
  /// The workload.
  public var workload: String
  /// The PKCS#10 request, PEM; its key never leaves the agent's host.
  public var csr: String

  /// Creates a request.
  public init(workload: String, csr: String) {
    self.workload = workload
    self.csr = csr
  }
}

/// `GET /v1/identity/trust`: the mesh's trust domain and the roots to trust (PEM).
public struct MeshTrust: Codable, Sendable, Hashable {
  /// The trust domain.
  public var trustDomain: String
  /// The roots, PEM.
  public var bundle: String
}

/// The answer: the identity decided, the chain (leaf first) and the trust bundle, PEM.
public struct SignedIdentity: Codable, Sendable, Hashable {
  /// The SPIFFE URI.
  public var identity: String
  /// The certificate chain, leaf first.
  public var chain: String
  /// The roots to trust.
  public var bundle: String
  /// When the leaf expires.
  public var notAfter: Date
}

extension Controller {
  /// Signs a workload's certificate request with the identity the workload's labels and
  /// services give it (``WorkloadIdentity``), never the one the request asks for.
  /// `caller` must be an operator or the workload's host.
  public func sign(
    _ request: SigningRequest, as caller: Principal = .admin("internal"), now: Date = Date()
  ) async throws -> SignedIdentity {
    guard let issuer = self.issuer else {
      throw ControlError(status: 501, code: "no-ca", message: "this controller runs without a CA")
    }
    guard let workload = try await self.store.get(ResourceKey(kind: .workload, name: request.workload)) else {
      throw ControlError.notFound("workload/\(request.workload) not found")
    }
    try caller.requireWrite(workload, existing: workload)
    let csr: CertificateSigningRequest
    do { csr = try CertificateSigningRequest(pemEncoded: request.csr) } catch {
      throw ControlError.invalid(
        "workload/\(request.workload): csr is not a PEM certificate request: \(error)")
    }
    let identity = try WorkloadIdentity.of(
      workload, services: try await self.store.list(.service).resources,
      trustDomain: issuer.authority.trustDomain)
    do {
      let issued = try issuer.authority.issue(csr, for: identity, now: now, lifetime: issuer.lifetime)
      return SignedIdentity(
        identity: identity.uri, chain: try issued.pem(), bundle: try issuer.bundle.pem(),
        notAfter: issued.certificate.notValidAfter)
    } catch let error as IdentityError {
      throw ControlError.invalid("workload/\(request.workload): \(error.message)")
    }
  }

  /// The trust domain and the trust bundle.
  public func trust() throws -> MeshTrust {
    guard let issuer = self.issuer else {
      throw ControlError(status: 501, code: "no-ca", message: "this controller runs without a CA")
    }
    return MeshTrust(trustDomain: issuer.authority.trustDomain, bundle: try issuer.bundle.pem())
  }
}
