import WeftModel

/// A token bucket for local rate limiting, sans-IO: it holds up to `capacity` tokens, gains
/// `perSecond` of them a second, and each request takes one. Times are nanoseconds on any
/// monotonic clock; a new bucket starts full.
public struct TokenBucket: Sendable, Hashable {
  /// Tokens added per second.
  public let perSecond: Double
  /// The most tokens it holds.
  public let capacity: Double
  /// Tokens now (fractions accumulate).
  public private(set) var tokens: Double
  /// Requests refused so far.
  public private(set) var refused: UInt64 = 0
  private var refilledAt: UInt64?

  /// A bucket for `limit`.
  public init(_ limit: RateLimitSpec) {
    self.init(perSecond: limit.requestsPerSecond, capacity: limit.effectiveBurst)
  }

  /// A bucket of `capacity` tokens refilled at `perSecond`.
  public init(perSecond: Double, capacity: Int) {
    self.perSecond = perSecond
    self.capacity = Double(capacity)
    self.tokens = Double(capacity)
  }

  /// Takes a token: nil when one was there, else how long until one will be, in nanoseconds.
  public mutating func take(now: UInt64) -> UInt64? {
    self.refill(now: now)
    if self.tokens >= 1 {
      self.tokens -= 1
      return nil
    }
    self.refused += 1
    return UInt64(((1 - self.tokens) / self.perSecond * 1e9).rounded(.up))
  }

  /// Gives back a token taken for a request that was refused by a later check after all.
  public mutating func giveBack() { self.tokens = min(self.tokens + 1, self.capacity) }

  private mutating func refill(now: UInt64) {
    if let then = self.refilledAt, now > then {
      self.tokens = min(self.capacity, self.tokens + Double(now - then) / 1e9 * self.perSecond)
    }
    if self.refilledAt.map({ now > $0 }) ?? true { self.refilledAt = now }
  }

  /// `Retry-After` for a wait in nanoseconds: whole seconds, rounded up, at least 1.
  public static func retryAfterSeconds(_ wait: UInt64) -> Int {
    max(1, Int((wait + 999_999_999) / 1_000_000_000))
  }
}
