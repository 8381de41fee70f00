import FoundationEssentials

/// A sidecar's credentials as its host agent hands them over its local socket: the workload's
/// identity, certificate chain (leaf first), private key (made on this host; it never leaves
/// it), the trust bundle, and when to ask again.
public struct ProxyIdentity: Codable, Sendable, Hashable {
  /// The SPIFFE URI.
  public var identity: String
  /// The chain, PEM.
  public var chain: String
  /// The key, PEM.
  public var key: String
  /// The roots to trust, PEM.
  public var bundle: String
  /// When to fetch new credentials (half-way through the certificate's life).
  public var renewAt: Date

  /// Creates credentials.
  public init(identity: String, chain: String, key: String, bundle: String, renewAt: Date) {
    self.identity = identity
    self.chain = chain
    self.key = key
    self.bundle = bundle
    self.renewAt = renewAt
  }
}
