/// Limits on what the calling sidecars send a service at once. A request over a limit fails at
/// once with 503 and `x-weft-overflow` naming the limit, instead of queueing behind a service
/// that is already struggling. Defaults are generous (100,000 each) and there is no other limit.
public struct CircuitBreakerSpec: Codable, Sendable, Hashable {
  /// Requests (HTTP requests, HTTP/2 streams, opaque connections) in flight at once.
  public var maxRequests: Int?
  /// Retries in flight at once.
  public var maxRetries: Int?

  /// The fields the mapping may have.
  public static let fields: Set<String> = ["maxRequests", "maxRetries"]
  /// The limit when none is given.
  public static let generous = 100_000

  /// Creates limits.
  public init(maxRequests: Int? = nil, maxRetries: Int? = nil) {
    self.maxRequests = maxRequests
    self.maxRetries = maxRetries
  }

  /// What is wrong, as (field, problem), or nil.
  public var problem: (field: String, message: String)? {
    for (field, value) in [("maxRequests", self.maxRequests), ("maxRetries", self.maxRetries)] {
      if let value, !(1...10_000_000).contains(value) { return (field, "\(value) is outside 1-10000000") }
    }
    return nil
  }
}
