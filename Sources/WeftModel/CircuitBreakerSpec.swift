/// Limits on what each calling sidecar sends a service at once. A request over a limit fails at
/// once with 503 and `x-weft-overflow` naming the limit, instead of queueing behind a service
/// that is already struggling. Defaults are generous (100,000 each) and there is no other limit.
public struct CircuitBreakerSpec: Codable, Sendable, Hashable {
  /// Upstream connections open to the service's endpoints at once (HTTP/1.1 and HTTP/2
  /// connections, opaque relays); reusing an open one is not limited.
  public var maxConnections: Int?
  /// Requests waiting for an upstream connection to open.
  public var maxPendingRequests: Int?
  /// Requests (HTTP requests, HTTP/2 streams, opaque connections) in flight at once.
  public var maxRequests: Int?
  /// Retries in flight at once.
  public var maxRetries: Int?

  /// The fields the mapping may have.
  public static let fields: Set<String> = [
    "maxConnections", "maxPendingRequests", "maxRequests", "maxRetries",
  ]
  /// The limit when none is given.
  public static let generous = 100_000

  /// Creates limits.
  public init(
    maxConnections: Int? = nil, maxPendingRequests: Int? = nil, maxRequests: Int? = nil,
    maxRetries: Int? = nil
  ) {
    self.maxConnections = maxConnections
    self.maxPendingRequests = maxPendingRequests
    self.maxRequests = maxRequests
    self.maxRetries = maxRetries
  }

  /// What is wrong, as (field, problem), or nil.
  public var problem: (field: String, message: String)? {
    let limits = [
      ("maxConnections", self.maxConnections), ("maxPendingRequests", self.maxPendingRequests),
      ("maxRequests", self.maxRequests), ("maxRetries", self.maxRetries),
    ]
    for (field, value) in limits {
      if let value, !(1...10_000_000).contains(value) { return (field, "\(value) is outside 1-10000000") }
    }
    return nil
  }
}
