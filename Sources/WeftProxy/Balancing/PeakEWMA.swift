/// Tuning of the peak-EWMA round-trip-time estimate every balancer keeps per endpoint.
public struct PeakEWMAConfiguration: Hashable, Sendable {
  /// The time constant of the exponential decay: an observation weighs `1/e` as much after this
  /// long. Linkerd uses 10 s.
  public var decayNanos: UInt64
  /// The estimate of an endpoint that has not answered yet. Linkerd uses 30 ms.
  public var defaultRTTNanos: UInt64
  /// When set, a failed request (connection refused, reset, timed out: not an HTTP error status)
  /// counts as taking at least this long, so that an endpoint failing fast does not look fast.
  public var failurePenaltyNanos: UInt64?

  /// Creates a configuration; the defaults are Linkerd's.
  public init(
    decayNanos: UInt64 = 10_000_000_000, defaultRTTNanos: UInt64 = 30_000_000,
    failurePenaltyNanos: UInt64? = nil
  ) {
    self.decayNanos = max(decayNanos, 1)
    self.defaultRTTNanos = defaultRTTNanos
    self.failurePenaltyNanos = failurePenaltyNanos
  }
}

/// A peak-sensitive exponentially weighted moving average of round-trip times, as in Finagle and
/// tower's `PeakEwma` (which Linkerd uses).
///
/// A sample above the estimate replaces it at once (the peak); a sample below is blended in with a
/// weight that grows with the time since the last update. Reading the estimate decays it toward
/// zero with that same elapsed time, so an endpoint that was slow once is tried again later.
struct PeakEWMA {
  /// The current estimate in nanoseconds.
  private(set) var estimate: Double
  /// When the estimate was last updated, or `nil` before the first update.
  private var updatedAt: UInt64?

  init(initialNanos: UInt64) {
    self.estimate = Double(initialNanos)
    self.updatedAt = nil
  }

  /// Folds in one round-trip time measured at `now`.
  mutating func observe(rttNanos: UInt64, now: UInt64, decayNanos: UInt64) {
    let rtt = Double(rttNanos)
    if rtt > self.estimate {
      self.estimate = rtt
    } else {
      let weight = self.decayWeight(now: now, decayNanos: decayNanos)
      self.estimate = self.estimate * weight + rtt * (1 - weight)
    }
    self.updatedAt = max(now, self.updatedAt ?? now)
  }

  /// Decays the estimate toward zero up to `now` and returns it.
  mutating func decayed(now: UInt64, decayNanos: UInt64) -> Double {
    self.estimate *= self.decayWeight(now: now, decayNanos: decayNanos)
    self.updatedAt = max(now, self.updatedAt ?? now)
    return self.estimate
  }

  /// `exp(-elapsed / decay)`, the weight the current estimate keeps.
  private func decayWeight(now: UInt64, decayNanos: UInt64) -> Double {
    guard let updatedAt = self.updatedAt, now > updatedAt else { return 1 }
    return negativeExponential(Double(now - updatedAt) / Double(decayNanos))
  }
}

/// `e^-x` for `x >= 0`, from the standard library alone (no libm): `e^-x = 2^-k * e^-r` with `k`
/// an integer and `r` in `[0, ln 2)`, and a Taylor series for `e^-r` that has converged to double
/// precision after 17 terms.
func negativeExponential(_ x: Double) -> Double {
  guard x > 0 else { return 1 }
  guard x < 745 else { return 0 }
  let ln2 = 0.693_147_180_559_945_309_417_232_121_458
  // Truncation is the floor here (x > 0), and unlike `rounded(.down)` needs no libm.
  let k = Int(x / ln2)
  let r = x - Double(k) * ln2
  var sum = 1.0
  var n = 17.0
  while n >= 1 {
    sum = 1 - r / n * sum
    n -= 1
  }
  return Double(sign: .plus, exponent: -k, significand: sum)
}
