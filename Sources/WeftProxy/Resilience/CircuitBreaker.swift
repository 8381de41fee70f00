import WeftModel

/// A service's concurrency limits as the sidecar enforces them, sans-IO: acquire a slot before
/// sending, release it when done; a refused acquire names the limit.
public struct CircuitBreaker: Sendable, Hashable {
  /// Which limit refused.
  public enum Limit: String, Sendable, Hashable {
    /// ``CircuitBreakerSpec/maxRequests``.
    case maxRequests = "max-requests"
    /// ``CircuitBreakerSpec/maxRetries``.
    case maxRetries = "max-retries"
  }

  /// Requests allowed in flight.
  public var maxRequests: Int
  /// Retries allowed in flight.
  public var maxRetries: Int
  /// Requests in flight now.
  public private(set) var requests = 0
  /// Retries in flight now.
  public private(set) var retries = 0
  /// Refusals so far, by limit.
  public private(set) var refused: [Limit: UInt64] = [:]

  /// Limits from a spec (generous defaults for what it leaves out).
  public init(_ spec: CircuitBreakerSpec?) {
    self.maxRequests = spec?.maxRequests ?? CircuitBreakerSpec.generous
    self.maxRetries = spec?.maxRetries ?? CircuitBreakerSpec.generous
  }

  /// Takes a request slot, or names the limit that refuses it.
  public mutating func acquireRequest() -> Limit? {
    guard self.requests < self.maxRequests else {
      self.refused[.maxRequests, default: 0] += 1
      return .maxRequests
    }
    self.requests += 1
    return nil
  }

  /// Gives a request slot back.
  public mutating func releaseRequest() { self.requests = max(self.requests - 1, 0) }

  /// Takes a retry slot (the retry's request slot is the original request's), or names the limit.
  public mutating func acquireRetry() -> Limit? {
    guard self.retries < self.maxRetries else {
      self.refused[.maxRetries, default: 0] += 1
      return .maxRetries
    }
    self.retries += 1
    return nil
  }

  /// Gives a retry slot back.
  public mutating func releaseRetry() { self.retries = max(self.retries - 1, 0) }

  /// Applies new limits, keeping what is in flight.
  public mutating func update(_ spec: CircuitBreakerSpec?) {
    self.maxRequests = spec?.maxRequests ?? CircuitBreakerSpec.generous
    self.maxRetries = spec?.maxRetries ?? CircuitBreakerSpec.generous
  }
}
