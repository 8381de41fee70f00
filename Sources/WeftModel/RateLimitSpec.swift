/// A local rate limit: a token bucket in each endpoint's own sidecar (inbound), holding `burst`
/// tokens and refilled at `requestsPerSecond`. A request that finds it empty is answered 429 with
/// `Retry-After` and never reaches the workload; an opaque connection is closed. Each endpoint
/// limits on its own, so a service of N endpoints takes up to N times the rate.
public struct RateLimitSpec: Codable, Sendable, Hashable {
  /// Tokens added per second.
  public var requestsPerSecond: Double
  /// The bucket's size: how many requests may come at once after a quiet spell (default: the
  /// rate rounded up, at least 1).
  public var burst: Int?

  /// The fields the mapping may have.
  public static let fields: Set<String> = ["requestsPerSecond", "burst"]

  /// Creates a limit.
  public init(requestsPerSecond: Double, burst: Int? = nil) {
    self.requestsPerSecond = requestsPerSecond
    self.burst = burst
  }

  /// The bucket's size in force.
  public var effectiveBurst: Int { self.burst ?? max(1, Int(self.requestsPerSecond.rounded(.up))) }

  /// What is wrong, as (field, problem), or nil.
  public var problem: (field: String, message: String)? {
    if !(self.requestsPerSecond > 0 && self.requestsPerSecond <= 10_000_000) {
      return ("requestsPerSecond", "\(self.requestsPerSecond) is outside (0, 10000000]")
    }
    if let burst = self.burst, !(1...10_000_000).contains(burst) {
      return ("burst", "\(burst) is outside 1-10000000")
    }
    return nil
  }
}
