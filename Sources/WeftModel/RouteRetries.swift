/// When a route rule's requests are tried again, and how often: for HTTP requests the calling
/// sidecar retries on another endpoint when one exists, after an exponential, fully jittered
/// backoff, while the rule's retry budget allows (retries at most `budgetPercent` of requests
/// plus `minRetriesPerSecond`), and only for idempotent methods unless told otherwise. A request
/// whose body is larger than `maxBodyBytes` is never retried (it is not kept).
public struct RouteRetries: Codable, Sendable, Hashable {
  /// What makes an attempt worth repeating.
  public enum Condition: String, Codable, Sendable, Hashable, CaseIterable {
    /// The connection to the endpoint could not be opened.
    case connectFailure = "connect-failure"
    /// The endpoint closed or reset the connection before answering.
    case reset
    /// 502, 503 or 504, or either of the above.
    case gatewayError = "gateway-error"
    /// Any 5xx, or no answer.
    case serverError = "5xx"
    /// A status listed in `retriableStatusCodes`.
    case retriableStatusCodes = "retriable-status-codes"
    /// The attempt took longer than the per-try timeout.
    case perTryTimeout = "per-try-timeout"
    /// An HTTP/2 endpoint refused the stream (RST_STREAM with REFUSED_STREAM) before doing
    /// anything with it: safe to retry whatever the method.
    case refusedStream = "refused-stream"
  }

  /// Attempts in all, the first included (default 2: one retry).
  public var attempts: Int?
  /// How long one attempt may take, in milliseconds; absent: the rule's overall timeout.
  public var perTryTimeoutMilliseconds: Int?
  /// The conditions (default: connect-failure, reset, gateway-error, per-try-timeout,
  /// refused-stream).
  public var retryOn: [Condition]?
  /// The statuses `retriable-status-codes` means.
  public var retriableStatusCodes: [Int]?
  /// Retry POST, PATCH and the like too (default false).
  public var retryNonIdempotent: Bool?
  /// Retries allowed per 100 requests (default 20).
  public var budgetPercent: Double?
  /// Retries allowed per second whatever the traffic (default 10).
  public var minRetriesPerSecond: Double?
  /// The first retry's backoff bound, in milliseconds (default 25; doubled each retry).
  public var backoffBaseMilliseconds: Int?
  /// The largest backoff bound, in milliseconds (default 250).
  public var backoffMaxMilliseconds: Int?
  /// The largest request body kept for retrying, in bytes (default 65536).
  public var maxBodyBytes: Int?

  /// The fields the mapping may have.
  public static let fields: Set<String> = [
    "attempts", "perTryTimeoutMilliseconds", "retryOn", "retriableStatusCodes", "retryNonIdempotent",
    "budgetPercent", "minRetriesPerSecond", "backoffBaseMilliseconds", "backoffMaxMilliseconds",
    "maxBodyBytes",
  ]

  /// Creates a policy.
  public init(
    attempts: Int? = nil, perTryTimeoutMilliseconds: Int? = nil, retryOn: [Condition]? = nil,
    retriableStatusCodes: [Int]? = nil, retryNonIdempotent: Bool? = nil, budgetPercent: Double? = nil,
    minRetriesPerSecond: Double? = nil, backoffBaseMilliseconds: Int? = nil,
    backoffMaxMilliseconds: Int? = nil,
    maxBodyBytes: Int? = nil
  ) {
    self.attempts = attempts
    self.perTryTimeoutMilliseconds = perTryTimeoutMilliseconds
    self.retryOn = retryOn
    self.retriableStatusCodes = retriableStatusCodes
    self.retryNonIdempotent = retryNonIdempotent
    self.budgetPercent = budgetPercent
    self.minRetriesPerSecond = minRetriesPerSecond
    self.backoffBaseMilliseconds = backoffBaseMilliseconds
    self.backoffMaxMilliseconds = backoffMaxMilliseconds
    self.maxBodyBytes = maxBodyBytes
  }

  /// Attempts in all.
  public var effectiveAttempts: Int { self.attempts ?? 2 }
  /// The conditions in force.
  public var conditions: Set<Condition> {
    Set(self.retryOn ?? [.connectFailure, .reset, .gatewayError, .perTryTimeout, .refusedStream])
  }
  /// The largest body kept.
  public var effectiveMaxBodyBytes: Int { self.maxBodyBytes ?? 65_536 }

  /// Whether an answer with `status` is worth another attempt.
  public func retries(status: Int) -> Bool {
    let conditions = self.conditions
    if conditions.contains(.serverError) && status >= 500 { return true }
    if conditions.contains(.gatewayError) && [502, 503, 504].contains(status) { return true }
    if conditions.contains(.retriableStatusCodes) && (self.retriableStatusCodes ?? []).contains(status) {
      return true
    }
    return false
  }

  /// Whether a failure without an answer is worth another attempt: `connected` tells a reset or
  /// close after the connection opened from a connect failure.
  public func retriesFailure(connected: Bool, timedOut: Bool = false, refused: Bool = false) -> Bool {
    let conditions = self.conditions
    if timedOut { return conditions.contains(.perTryTimeout) }
    if refused && conditions.contains(.refusedStream) { return true }
    if conditions.contains(.serverError) || conditions.contains(.gatewayError) { return true }
    return conditions.contains(connected ? .reset : .connectFailure)
  }

  /// Whether requests with this method may be retried.
  public func allows(method: String) -> Bool {
    self.retryNonIdempotent == true || ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(method)
  }

  /// What is wrong, as (field under `retries`, problem), or nil.
  public var problem: (field: String, message: String)? {
    if let a = self.attempts, !(1...10).contains(a) { return ("attempts", "\(a) is outside 1-10") }
    if let t = self.perTryTimeoutMilliseconds, !(1...3_600_000).contains(t) {
      return ("perTryTimeoutMilliseconds", "\(t) is outside 1-3600000")
    }
    if let codes = self.retriableStatusCodes, let bad = codes.first(where: { !(400...599).contains($0) }) {
      return ("retriableStatusCodes", "\(bad) is not an error status (400-599)")
    }
    if let p = self.budgetPercent, !(0...100).contains(p) {
      return ("budgetPercent", "\(p) is outside 0-100")
    }
    if let m = self.minRetriesPerSecond, !(0...10_000).contains(m) {
      return ("minRetriesPerSecond", "\(m) is outside 0-10000")
    }
    if let b = self.backoffBaseMilliseconds, !(0...60_000).contains(b) {
      return ("backoffBaseMilliseconds", "\(b) is outside 0-60000")
    }
    if let m = self.backoffMaxMilliseconds, m < (self.backoffBaseMilliseconds ?? 25) {
      return ("backoffMaxMilliseconds", "must be at least backoffBaseMilliseconds")
    }
    if let m = self.maxBodyBytes, !(0...(64 << 20)).contains(m) {
      return ("maxBodyBytes", "\(m) is outside 0-67108864")
    }
    return nil
  }
}
