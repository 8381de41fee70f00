import Crypto
import FoundationEssentials
import SwiftASN1
import X509

/// The mesh's certificate authority: it signs short-lived workload certificates whose only
/// name is a SPIFFE URI. It never sees a workload's private key: it signs a request that proves
/// possession of one, and puts in the identity it decided on itself, whatever the request asks.
public struct CertificateAuthority: Sendable {
  /// The signing certificate (a root Weft made, or an operator's root or intermediate).
  public let certificate: Certificate
  /// Certificates between the signing one and the root, when the signing one is an
  /// intermediate (sent along with every leaf); empty for a root.
  public let intermediates: [Certificate]
  /// The trust domain of every identity it signs.
  public let trustDomain: String
  let key: Certificate.PrivateKey

  /// Wraps an existing certificate and its key, checking that they belong together and that
  /// the certificate may sign others.
  public init(
    certificate: Certificate, key: Certificate.PrivateKey, intermediates: [Certificate] = [],
    trustDomain: String
  ) throws {
    guard key.publicKey == certificate.publicKey else {
      throw IdentityError(
        .malformed, "the CA key does not belong to the CA certificate \(certificate.subject)")
    }
    guard case .isCertificateAuthority = try certificate.extensions.basicConstraints else {
      throw IdentityError(.malformed, "\(certificate.subject) is not a CA certificate (basicConstraints)")
    }
    guard SPIFFEID.isTrustDomain(trustDomain) else {
      throw IdentityError(
        .malformed, "'\(trustDomain)' is not a trust domain (lower-case letters, digits, . - _)")
    }
    self.certificate = certificate
    self.key = key
    self.intermediates = intermediates
    self.trustDomain = trustDomain
  }

  /// A new self-signed root (ECDSA P-256) for `trustDomain`, valid from a minute before `now`,
  /// named `name` and the trust domain.
  public static func generate(
    trustDomain: String, now: Date = Date(), lifetime: TimeInterval = 10 * 365 * 86_400,
    name: String = "Weft mesh CA"
  ) throws -> CertificateAuthority {
    let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
    let name = try DistinguishedName {
      OrganizationName("Weft")
      CommonName("\(name) \(trustDomain) \(Int(now.timeIntervalSince1970))")
    }
    let certificate = try Certificate(
      version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
      notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(lifetime),
      issuer: name,
      subject: name, signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
        Critical(KeyUsage(keyCertSign: true, cRLSign: true))
        SubjectKeyIdentifier(hash: key.publicKey)
      }, issuerPrivateKey: key)
    return try CertificateAuthority(certificate: certificate, key: key, trustDomain: trustDomain)
  }

  /// Signs `request` for `identity`: the certificate names `identity` (a SPIFFE URI SAN, for
  /// client and server authentication) and is valid from a minute before `now` for
  /// `lifetime`, never past the CA's own end. Refused when the request's signature does not
  /// match its key or the identity is of another trust domain.
  public func issue(
    _ request: CertificateSigningRequest, for identity: SPIFFEID, now: Date = Date(),
    lifetime: TimeInterval = 86_400
  ) throws -> IssuedCertificate {
    guard identity.trustDomain == self.trustDomain else {
      throw IdentityError(
        .wrongIdentity, "\(identity) is not in this CA's trust domain \(self.trustDomain)")
    }
    return try self.issue(
      request, names: [.uniformResourceIdentifier(identity.uri)], usages: [.serverAuth, .clientAuth],
      what: identity.uri, now: now, lifetime: lifetime)
  }

  /// Signs `request` with exactly `names` as subject alternative names and `usages` as extended
  /// key usages (the request's own names are ignored); `what` names the certificate in errors.
  public func issue(
    _ request: CertificateSigningRequest, names: [GeneralName], usages: [ExtendedKeyUsage.Usage],
    what: String, now: Date = Date(), lifetime: TimeInterval = 86_400
  ) throws -> IssuedCertificate {
    guard request.publicKey.isValidSignature(request.signature, for: request) else {
      throw IdentityError(.badSignature, "the signing request for \(what) is not signed by its own key")
    }
    let notAfter = min(now.addingTimeInterval(lifetime), self.certificate.notValidAfter)
    let leaf = try Certificate(
      version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: request.publicKey,
      notValidBefore: now.addingTimeInterval(-60), notValidAfter: notAfter, issuer: self.certificate.subject,
      subject: try DistinguishedName { OrganizationName("Weft") },
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.notCertificateAuthority)
        Critical(KeyUsage(digitalSignature: true))
        try ExtendedKeyUsage(usages)
        SubjectAlternativeNames(names)
        AuthorityKeyIdentifier(
          keyIdentifier: try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
      }, issuerPrivateKey: self.key)
    return IssuedCertificate(certificate: leaf, chain: [leaf] + [self.certificate] + self.intermediates)
  }

  /// The CA certificate and its key in PEM, the key as PKCS#8.
  public func pem() throws -> (certificate: String, key: String) {
    (try self.certificate.serializeAsPEM().pemString, try self.key.serializeAsPEM().pemString)
  }
}

/// A signed workload certificate and the chain to send with it (leaf first, root left out when
/// the signer is a root).
public struct IssuedCertificate: Sendable, Hashable {
  /// The leaf.
  public var certificate: Certificate
  /// The leaf, then the signer and any intermediates.
  public var chain: [Certificate]

  /// The chain in PEM, leaf first.
  public func pem() throws -> String {
    try self.chain.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
  }
}
