import Foundation
import WeftIdentity
import WeftModel
import X509

/// The controller's CA: the authority that signs workload certificates, the trust bundle the
/// sidecars verify against, and how long a certificate lasts.
///
/// A CA rotation (``Controller/rotateCA(as:now:)``) goes in two steps so that no sidecar ever
/// meets a certificate it cannot verify: first the bundle carries both roots while the old CA
/// still signs, for ``propagation`` (long enough for every agent and sidecar to fetch the new
/// bundle); then the new CA signs, and certificates move to it as they are renewed. The old
/// root is retired (``Controller/retireCA(as:force:now:)``) once no certificate it signed can
/// still be valid.
public struct IdentityIssuer: Sendable {
  /// The signing CA (after a rotation's propagation: the new one).
  public var authority: CertificateAuthority
  /// The roots every sidecar trusts (two during a CA rotation).
  public var bundle: TrustBundle
  /// A workload certificate's lifetime, in seconds (default 24 h).
  public var lifetime: TimeInterval
  /// Where the CA is kept, for rotations (nil: rotations are refused).
  public var store: CAStore?
  /// How long after a rotation the old CA still signs, while the new bundle spreads.
  public var propagation: TimeInterval
  /// The CA replaced by the last rotation and when that was (nil: no rotation in this run).
  public var previous: (authority: CertificateAuthority, until: Date)?

  /// Creates an issuer.
  public init(
    authority: CertificateAuthority, bundle: TrustBundle, lifetime: TimeInterval = 86_400,
    store: CAStore? = nil,
    propagation: TimeInterval = 90
  ) {
    self.authority = authority
    self.bundle = bundle
    self.lifetime = lifetime
    self.store = store
    self.propagation = propagation
  }

  /// The CA that signs at `now`: the old one while a rotation propagates, else the current one.
  public func signer(at now: Date) -> CertificateAuthority {
    if let previous, now < previous.until { return previous.authority }
    return self.authority
  }
}

/// `POST /v1/identity/rotate` and `/retire`: where the mesh's CA stands after the change.
public struct CAStatus: Codable, Sendable, Hashable {
  /// The trust domain.
  public var trustDomain: String
  /// The subject of the CA that will sign from `signsFrom` on.
  public var signer: String
  /// When that CA signs the certificates (after a rotation's propagation).
  public var signsFrom: Date
  /// The subjects of the roots in the bundle, the signer's first.
  public var roots: [String]
  /// The earliest time the other roots can be retired without `force`: when the last
  /// certificate they may have signed expires (nil: nothing to retire).
  public var retireAfter: Date?
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
      let issued = try issuer.signer(at: now).issue(csr, for: identity, now: now, lifetime: issuer.lifetime)
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

extension Controller {
  /// Starts a CA rotation: a new root is made and kept, the bundle trusts it beside the old one
  /// at once, and it signs once the bundle has had time to reach every sidecar
  /// (``IdentityIssuer/propagation``). Operators only.
  public func rotateCA(as caller: Principal, now: Date = Date()) throws -> CAStatus {
    try caller.requireAdmin("rotate the mesh CA")
    guard var issuer = self.issuer, let store = issuer.store else {
      throw ControlError(status: 501, code: "no-ca", message: "this controller has no CA store to rotate")
    }
    let outgoing = issuer.signer(at: now)
    let (fresh, bundle) = try Self.identityStore {
      try store.rotate(trustDomain: outgoing.trustDomain, now: now)
    }
    issuer.previous = (outgoing, now.addingTimeInterval(issuer.propagation))
    issuer.authority = fresh
    issuer.bundle = bundle
    self.issuer = issuer
    return try self.caStatus(now: now)
  }

  /// Ends a rotation: the bundle keeps only the signing CA's root. Refused while a certificate
  /// signed by another root may still be valid, unless `force` (those certificates then stop
  /// verifying). Operators only.
  public func retireCA(as caller: Principal, force: Bool = false, now: Date = Date()) throws -> CAStatus {
    try caller.requireAdmin("retire old mesh CA roots")
    guard var issuer = self.issuer, let store = issuer.store else {
      throw ControlError(
        status: 501, code: "no-ca", message: "this controller has no CA store to retire roots from")
    }
    let status = try self.caStatus(now: now)
    if let after = status.retireAfter, now < after, !force {
      throw ControlError(
        status: 409, code: "in-use",
        message:
          "certificates signed by the old root may be valid until \(after.ISO8601Format()) (the new CA signs from \(status.signsFrom.ISO8601Format()), certificates last \(Int(issuer.lifetime)) s); retire then, or force it"
      )
    }
    issuer.bundle = try Self.identityStore { try store.retire(trustDomain: issuer.authority.trustDomain) }
    issuer.previous = nil
    self.issuer = issuer
    return try self.caStatus(now: now)
  }

  /// Where the CA stands: who signs from when, the roots, when the others may go.
  public func caStatus(now: Date = Date()) throws -> CAStatus {
    guard let issuer = self.issuer else {
      throw ControlError(status: 501, code: "no-ca", message: "this controller runs without a CA")
    }
    let root = issuer.authority.intermediates.last ?? issuer.authority.certificate
    let others = issuer.bundle.roots.filter { $0 != root }
    // A rotation made before this run: the new CA's own start stands for the rotation's time.
    let signsFrom = issuer.previous?.until ?? issuer.authority.certificate.notValidBefore
    return CAStatus(
      trustDomain: issuer.authority.trustDomain, signer: issuer.authority.certificate.subject.description,
      signsFrom: signsFrom,
      roots: ([root] + others).map { $0.subject.description },
      retireAfter: others.isEmpty ? nil : signsFrom.addingTimeInterval(issuer.lifetime))
  }

  private static func identityStore<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as IdentityError {
      throw ControlError(status: 500, code: "ca-store", message: error.message)
    }
  }
}
