import FoundationEssentials
import SwiftASN1
import X509

/// The roots a sidecar trusts: one normally, two while the CA is being rotated (certificates
/// of the old and the new root both verify until every workload has one of the new).
public struct TrustBundle: Sendable, Hashable {
  /// The trusted roots.
  public var roots: [Certificate]

  /// A bundle of `roots`.
  public init(roots: [Certificate]) { self.roots = roots }

  /// Reads every certificate of a PEM text.
  public init(pem: String) throws {
    self.roots = try Self.certificates(pem: pem, what: "trust bundle")
  }

  /// The roots in PEM.
  public func pem() throws -> String {
    try self.roots.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
  }

  /// Verifies a peer's chain (leaf first) against the roots now and returns the SPIFFE
  /// identity its leaf names; throws `untrusted` when it does not chain to a root or is out of
  /// its validity, `malformed` when the leaf names no single SPIFFE identity.
  public func verify(_ chain: [Certificate]) async throws -> SPIFFEID {
    guard let leaf = chain.first else { throw IdentityError(.malformed, "the peer sent no certificate") }
    var verifier = Verifier(rootCertificates: CertificateStore(self.roots)) { RFC5280Policy() }
    let result = await verifier.validate(
      leaf: leaf, intermediates: CertificateStore(Array(chain.dropFirst())))
    guard case .validCertificate = result else {
      let window = "\(leaf.notValidBefore) to \(leaf.notValidAfter)"
      throw IdentityError(
        .untrusted, "the certificate (valid \(window)) does not chain to a trusted root now (\(Date()))")
    }
    return try Self.identity(of: leaf)
  }

  /// Verifies as ``verify(_:)`` and requires `expected`.
  public func verify(_ chain: [Certificate], expecting expected: SPIFFEID) async throws {
    let found = try await self.verify(chain)
    guard found == expected else {
      throw IdentityError(.wrongIdentity, "the peer is \(found), not \(expected)")
    }
  }

  /// The one SPIFFE identity a certificate's subject alternative names hold.
  public static func identity(of certificate: Certificate) throws -> SPIFFEID {
    let names = (try? certificate.extensions.subjectAlternativeNames).map { Array($0) } ?? []
    let uris = names.compactMap { name -> SPIFFEID? in
      if case .uniformResourceIdentifier(let uri) = name { return SPIFFEID(uri: uri) }
      return nil
    }
    guard uris.count == 1, let identity = uris.first else {
      throw IdentityError(.malformed, "the certificate names \(uris.count) SPIFFE identities, not one")
    }
    return identity
  }

  /// Every certificate of a PEM text; `what` names it in errors.
  public static func certificates(pem: String, what: String) throws -> [Certificate] {
    let documents: [PEMDocument]
    do { documents = try PEMDocument.parseMultiple(pemString: pem) } catch {
      throw IdentityError(.malformed, "the \(what) is not PEM: \(error)")
    }
    guard !documents.isEmpty else { throw IdentityError(.malformed, "the \(what) holds no certificate") }
    do { return try documents.map { try Certificate(pemDocument: $0) } } catch {
      throw IdentityError(.malformed, "the \(what) holds something that is not a certificate: \(error)")
    }
  }
}
