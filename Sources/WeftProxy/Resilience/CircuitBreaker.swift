import WeftModel

/// A service's concurrency limits as one calling sidecar enforces them, sans-IO: acquire a slot
/// before using it, release it when done; a refused acquire names the limit. Nothing queues: a
/// request over a limit fails at once.
public struct CircuitBreaker: Sendable, Hashable {
  /// Which limit refused.
  public enum Limit: String, Sendable, Hashable, CaseIterable {
    /// ``CircuitBreakerSpec/maxConnections``.
    case maxConnections = "max-connections"
    /// ``CircuitBreakerSpec/maxPendingRequests``.
    case maxPendingRequests = "max-pending-requests"
    /// ``CircuitBreakerSpec/maxRequests``.
    case maxRequests = "max-requests"
    /// ``CircuitBreakerSpec/maxRetries``.
    case maxRetries = "max-retries"
  }

  /// The most of each that may be held at once.
  public private(set) var maximum: [Limit: Int] = [:]
  /// What is held now, by limit.
  public private(set) var held: [Limit: Int] = [:]
  /// Refusals so far, by limit.
  public private(set) var refused: [Limit: UInt64] = [:]

  /// Limits from a spec (generous defaults for what it leaves out).
  public init(_ spec: CircuitBreakerSpec?) {
    self.update(spec)
  }

  /// Takes a slot of `limit`, or returns `limit` when it is full (and counts the refusal).
  public mutating func acquire(_ limit: Limit) -> Limit? {
    guard self.held[limit, default: 0] < self.maximum[limit, default: CircuitBreakerSpec.generous] else {
      self.refused[limit, default: 0] += 1
      return limit
    }
    self.held[limit, default: 0] += 1
    return nil
  }

  /// Gives a slot of `limit` back.
  public mutating func release(_ limit: Limit) {
    self.held[limit] = max(self.held[limit, default: 0] - 1, 0)
  }

  /// Requests in flight now.
  public var requests: Int { self.held[.maxRequests, default: 0] }
  /// Retries in flight now.
  public var retries: Int { self.held[.maxRetries, default: 0] }

  /// Takes a request slot, or names the limit that refuses it.
  public mutating func acquireRequest() -> Limit? { self.acquire(.maxRequests) }
  /// Gives a request slot back.
  public mutating func releaseRequest() { self.release(.maxRequests) }
  /// Takes a retry slot (a retry also keeps its request's request slot), or names the limit.
  public mutating func acquireRetry() -> Limit? { self.acquire(.maxRetries) }
  /// Gives a retry slot back.
  public mutating func releaseRetry() { self.release(.maxRetries) }

  /// Applies new limits, keeping what is held.
  public mutating func update(_ spec: CircuitBreakerSpec?) {
    let generous = CircuitBreakerSpec.generous
    self.maximum = [
      .maxConnections: spec?.maxConnections ?? generous,
      .maxPendingRequests: spec?.maxPendingRequests ?? generous,
      .maxRequests: spec?.maxRequests ?? generous,
      .maxRetries: spec?.maxRetries ?? generous,
    ]
  }
}
