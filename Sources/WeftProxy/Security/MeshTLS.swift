import FoundationEssentials
import NIOCore
import NIOSSL
import Synchronization
import WeftIdentity
import X509

/// The sidecar's mutual TLS: its workload's certificate and key, the roots it trusts, and the
/// handlers that put TLS 1.3 on the connections between sidecars. Both ends verify the other's
/// chain against the trust bundle (swift-certificates, RFC 5280) and its SPIFFE identity: a
/// caller requires the identity the snapshot gives the endpoint it dialled; the endpoint's side
/// learns the caller's. ALPN says what the connection carries (``Carries``), so the endpoint
/// needs no protocol detection on the mesh hop. New credentials apply to new connections; open
/// ones keep theirs, so a rotation drops nothing.
public final class MeshTLS: Sendable {
  /// What a mesh connection carries, as its ALPN token.
  public enum Carries: String, Sendable, CaseIterable {
    /// HTTP/1.1 requests.
    case http1 = "weft/http1"
    /// HTTP/2 (gRPC included).
    case http2 = "weft/h2"
    /// Opaque bytes.
    case tcp = "weft/tcp"
  }

  /// What the sidecar holds now, as its admin page `/identity` shows it.
  public struct Status: Codable, Sendable, Hashable {
    /// The workload's SPIFFE identity.
    public var identity: String
    /// The certificate's issuer (the CA that signed it), as a distinguished name.
    public var issuer: String
    /// When the certificate expires.
    public var notAfter: Date
    /// The subjects of the roots trusted, in the bundle's order (two during a CA rotation).
    public var roots: [String]
  }

  private struct Current: Sendable {
    var identity: SPIFFEID
    var bundle: TrustBundle
    var issuer: String
    var notAfter: Date
    var server: NIOSSLContext
    var clients: [Carries: NIOSSLContext]
    /// The PEM it was made from, to tell a real change from the same credentials again.
    var source: String
  }
  private let current = Mutex<Current?>(nil)

  /// Creates one without credentials (plaintext until ``update(chainPEM:keyPEM:bundlePEM:)``).
  public init() {}

  /// The identity of this sidecar's workload, once it has credentials.
  public var identity: SPIFFEID? { self.current.withLock { $0?.identity } }

  /// When the certificate in use expires.
  public var notAfter: Date? { self.current.withLock { $0?.notAfter } }

  /// The credentials in use (nil before the first).
  public var status: Status? {
    self.current.withLock { now in
      now.map {
        Status(
          identity: $0.identity.uri, issuer: $0.issuer, notAfter: $0.notAfter,
          roots: $0.bundle.roots.map { $0.subject.description })
      }
    }
  }

  /// True once there are credentials.
  public var isReady: Bool { self.current.withLock { $0 != nil } }

  /// Takes new credentials (PEM): the chain (leaf first), its key and the trust bundle. Returns
  /// false, changing nothing, when they are the ones in use already.
  @discardableResult
  public func update(chainPEM: String, keyPEM: String, bundlePEM: String) throws -> Bool {
    let source = chainPEM + keyPEM + bundlePEM
    if self.current.withLock({ $0?.source == source }) { return false }
    let chain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8))
    let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
    let x509 = try TrustBundle.certificates(pem: chainPEM, what: "certificate chain")
    let bundle = try TrustBundle(pem: bundlePEM)
    let identity = try TrustBundle.identity(of: x509[0])
    let roots = try NIOSSLCertificate.fromPEMBytes(Array(bundlePEM.utf8))
    func configuration(server: Bool, alpn: [String]) -> TLSConfiguration {
      var c =
        server
        ? TLSConfiguration.makeServerConfiguration(
          certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        : TLSConfiguration.makeClientConfiguration()
      if !server {
        c.certificateChain = chain.map { .certificate($0) }
        c.privateKey = .privateKey(key)
      }
      c.minimumTLSVersion = .tlsv13
      c.maximumTLSVersion = .tlsv13
      // The server asks for a client certificate, refuses a handshake without one, and verifies
      // its chain against the bundle within the handshake (BoringSSL); the client's verification
      // is ours (the custom callback: chain and expected identity).
      c.certificateVerification = .noHostnameVerification
      c.trustRoots = .certificates(roots)
      c.applicationProtocols = alpn
      return c
    }
    let server = try NIOSSLContext(
      configuration: configuration(server: true, alpn: Carries.allCases.map(\.rawValue)))
    var clients: [Carries: NIOSSLContext] = [:]
    for carries in Carries.allCases {
      clients[carries] = try NIOSSLContext(
        configuration: configuration(server: false, alpn: [carries.rawValue]))
    }
    let next = Current(
      identity: identity, bundle: bundle, issuer: x509[0].issuer.description, notAfter: x509[0].notValidAfter,
      server: server, clients: clients,
      source: source)
    self.current.withLock { $0 = next }
    return true
  }

  /// A client-side TLS handler for a connection to an endpoint whose certificate must name
  /// `expected`, carrying `carries`; nil without credentials.
  public func clientHandler(carries: Carries, expecting expected: String) throws -> NIOSSLClientHandler? {
    guard let now = self.current.withLock({ $0 }), let context = now.clients[carries] else { return nil }
    let bundle = now.bundle
    return try NIOSSLClientHandler(context: context, serverHostname: nil) { certificates, promise in
      Self.verify(certificates, bundle: bundle, promise: promise) { found in
        found.uri == expected ? nil : "the endpoint is \(found), not \(expected)"
      }
    }
  }

  /// A server-side TLS handler for a connection from another sidecar: the caller's chain is
  /// verified against the bundle during the handshake, synchronously, so that a caller that
  /// half-closes right after its first bytes is not cut off by a verification still running.
  /// Nil without credentials.
  public func serverHandler() -> NIOSSLServerHandler? {
    guard let now = self.current.withLock({ $0 }) else { return nil }
    return NIOSSLServerHandler(context: now.server)
  }

  /// The identity the caller's verified certificate names, once the handshake is done.
  public static func peerIdentity(of handler: NIOSSLHandler) -> SPIFFEID? {
    guard let certificate = handler.peerCertificate,
      let x509 = try? Certificate(derEncoded: try certificate.toDERBytes())
    else { return nil }
    return try? TrustBundle.identity(of: x509)
  }

  /// Verifies a peer's chain off the event loop and completes `promise`; `check` may refuse a
  /// verified identity by saying why.
  private static func verify(
    _ certificates: [NIOSSLCertificate], bundle: TrustBundle,
    promise: EventLoopPromise<NIOSSLVerificationResult>,
    check: @escaping @Sendable (SPIFFEID) -> String?
  ) {
    let chain: [Certificate]
    do { chain = try certificates.map { try Certificate(derEncoded: try $0.toDERBytes()) } } catch {
      promise.succeed(.failed)
      return
    }
    Task {
      do {
        let found = try await bundle.verify(chain)
        promise.succeed(check(found) == nil ? .certificateVerified : .failed)
      } catch {
        promise.succeed(.failed)
      }
    }
  }
}
