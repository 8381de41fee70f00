import Crypto
import FoundationEssentials
import X509

/// A workload's private key (made on its host, never sent anywhere) and the certificate chain
/// the CA signed for it.
public struct WorkloadCredentials: Sendable {
  /// The key.
  public let key: Certificate.PrivateKey
  /// The chain, leaf first.
  public let chain: [Certificate]

  /// Credentials from a key and its signed chain; refused when the leaf is not for this key.
  public init(key: Certificate.PrivateKey, chain: [Certificate]) throws {
    guard let leaf = chain.first, leaf.publicKey == key.publicKey else {
      throw IdentityError(.malformed, "the certificate chain does not start with this key's certificate")
    }
    self.key = key
    self.chain = chain
  }

  /// A fresh key (ECDSA P-256) and a signing request proving possession of it. The request
  /// names nothing but the workload (the CA decides the identity).
  public static func request(for workload: String) throws -> (
    key: Certificate.PrivateKey, request: CertificateSigningRequest
  ) {
    let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
    let request = try CertificateSigningRequest(
      version: .v1, subject: try DistinguishedName { CommonName(workload) }, privateKey: key,
      attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
    return (key, request)
  }

  /// The identity the leaf names.
  public var identity: SPIFFEID { get throws { try TrustBundle.identity(of: self.chain[0]) } }

  /// When to get a new certificate: half-way through the leaf's validity, so a renewal that
  /// fails has as long again to be retried before anything breaks.
  public var renewAt: Date {
    let leaf = self.chain[0]
    return leaf.notValidBefore.addingTimeInterval(
      leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore) / 2)
  }

  /// The chain and the key in PEM.
  public func pem() throws -> (chain: String, key: String) {
    (
      try self.chain.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n",
      try self.key.serializeAsPEM().pemString + "\n"
    )
  }
}
