import WeftModel

/// What a balancer may know about the request it places.
///
/// Only `ring_hash` looks at it: the context carries the stable 64-bit hash of the request's key
/// (see ``HashKeySource``), already computed, so the context is a few bytes and building it does
/// not allocate. Other policies ignore it; pass ``none``.
public struct PickContext: Hashable, Sendable {
  /// The ``XXHash64`` of the request's hash key, or `nil` when the request has none, in which
  /// case `ring_hash` places it at random.
  public var hash: UInt64?

  /// A context without a hash key.
  public static let none = PickContext(hash: nil)

  /// Creates a context from a precomputed hash.
  public init(hash: UInt64?) {
    self.hash = hash
  }

  /// Creates a context whose key is the UTF-8 bytes of `key` (a header or cookie value).
  public init(hashKey key: some StringProtocol) {
    self.hash = XXHash64.hash(key)
  }

  /// Creates a context whose key is arbitrary bytes.
  public init(hashKeyBytes bytes: some Sequence<UInt8>) {
    self.hash = XXHash64.hash(bytes)
  }

  /// Creates a context whose key is the client's IPv4 address. The port is left out on purpose,
  /// so that every connection from one client lands on the same endpoint.
  public init(sourceAddress: EndpointAddress) {
    let bytes = sourceAddress.ipv4.bigEndian
    self.hash = withUnsafeBytes(of: bytes) { XXHash64.hash($0) }
  }
}
