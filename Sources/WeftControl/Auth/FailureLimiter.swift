import Foundation

/// Slows down guessing: each source (an address) may fail authentication `burst` times, then
/// once per `interval`; while it has no failures left, its requests are refused unseen. Sans-IO:
/// the caller gives the time.
public struct FailureLimiter: Sendable {
  /// Failures allowed at once.
  public var burst: Double
  /// Seconds to earn back one failure.
  public var interval: Double
  private var buckets: [String: (tokens: Double, at: Double)] = [:]

  /// Creates a limiter.
  public init(burst: Int = 10, interval: Double = 6) {
    self.burst = Double(burst)
    self.interval = interval
  }

  /// Seconds until `source` may try again, or nil when it may now.
  public func lockedOut(_ source: String, now: Double) -> Double? {
    let tokens = self.tokens(source, now: now)
    return tokens >= 1 ? nil : (1 - tokens) * self.interval
  }

  /// Records one failure of `source`.
  public mutating func fail(_ source: String, now: Double) {
    self.buckets[source] = (max(0, self.tokens(source, now: now) - 1), now)
    if self.buckets.count > 10_000 {
      // Forget sources that have earned back everything.
      self.buckets = self.buckets.filter { self.tokens($0.key, now: now) < self.burst }
    }
  }

  private func tokens(_ source: String, now: Double) -> Double {
    guard let b = self.buckets[source] else { return self.burst }
    return min(self.burst, b.tokens + max(0, now - b.at) / self.interval)
  }
}
