/// Bounds retries so that they cannot multiply load, the way Linkerd budgets them: every request
/// deposits `ratio` of a retry into the budget, time adds `minimumPerSecond`, and a retry spends
/// one whole. Over any stretch of time T, retries are then at most ratio x requests +
/// minimumPerSecond x T + `maximumBalance` (what was saved before), so with every endpoint
/// failing the upstream rate stays under (1 + ratio) x the client's rate plus the minimum.
/// A new budget starts with one second's minimum saved, so the first failures can be retried.
/// Sans-IO: times are nanoseconds on any monotonic clock.
public struct RetryBudget: Sendable, Hashable {
  /// Retries earned per request (0.2: one retry per five requests).
  public var ratio: Double
  /// Retries earned per second whatever the traffic, so that a trickle can still retry.
  public var minimumPerSecond: Double
  /// The most the budget saves up (a burst of retries after a quiet spell is at most this).
  public var maximumBalance: Double
  /// Retries that may start now (fractions accumulate).
  public private(set) var balance: Double
  /// Retries refused because the budget was spent.
  public private(set) var exhausted: UInt64 = 0
  private var refilledAt: UInt64?

  /// Creates a budget: by default 20% of requests, 10 a second, at most 100 saved.
  public init(ratio: Double = 0.2, minimumPerSecond: Double = 10, maximumBalance: Double = 100) {
    self.ratio = ratio
    self.minimumPerSecond = minimumPerSecond
    self.maximumBalance = maximumBalance
    self.balance = min(minimumPerSecond, maximumBalance)
  }

  /// A request (a first attempt) starts: it earns `ratio` of a retry.
  public mutating func requestStarted(now: UInt64) {
    self.refill(now: now)
    self.balance = min(self.balance + self.ratio, self.maximumBalance)
  }

  /// Asks to start a retry: true, and one retry spent, when the budget has one.
  public mutating func tryRetry(now: UInt64) -> Bool {
    self.refill(now: now)
    guard self.balance >= 1 else {
      self.exhausted += 1
      return false
    }
    self.balance -= 1
    return true
  }

  private mutating func refill(now: UInt64) {
    if let last = self.refilledAt, now > last {
      let seconds = Double(now - last) / 1e9
      self.balance = min(self.balance + seconds * self.minimumPerSecond, self.maximumBalance)
    }
    self.refilledAt = max(now, self.refilledAt ?? now)
  }
}

/// Exponential backoff with full jitter: before retry n (1, 2, ...) wait a uniformly random time
/// in [0, min(maximum, base x 2^(n-1))].
public struct Backoff: Sendable, Hashable {
  /// The first retry's upper bound, in nanoseconds (25 ms by default).
  public var baseNanos: UInt64
  /// The bound no retry's wait exceeds (250 ms by default).
  public var maximumNanos: UInt64

  /// Creates a backoff.
  public init(baseNanos: UInt64 = 25_000_000, maximumNanos: UInt64 = 250_000_000) {
    self.baseNanos = baseNanos
    self.maximumNanos = max(maximumNanos, baseNanos)
  }

  /// The upper bound of the wait before retry `attempt` (1-based).
  public func bound(attempt: Int) -> UInt64 {
    let shift = UInt64(min(max(attempt - 1, 0), 32))
    let (grown, overflow) = self.baseNanos.multipliedReportingOverflow(by: 1 << shift)
    return overflow ? self.maximumNanos : min(grown, self.maximumNanos)
  }

  /// The wait before retry `attempt`, drawn from `random`.
  public func delay<R: RandomNumberGenerator>(attempt: Int, using random: inout R) -> UInt64 {
    UInt64.random(in: 0...self.bound(attempt: attempt), using: &random)
  }
}
