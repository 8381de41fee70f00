/// Passive health checking of a service's endpoints from the traffic the sidecars see: an
/// endpoint that fails too often is ejected (gets no requests) for a while, longer each time.
/// Every field is optional; the defaults are in ``OutlierDetectionSpec/resolved``.
public struct OutlierDetectionSpec: Codable, Sendable, Hashable {
  /// Consecutive 5xx answers (gateway errors included) that eject an endpoint; 0 turns it off.
  public var consecutive5xx: Int?
  /// Consecutive gateway errors (502, 503, 504, connect failures, resets) that eject; 0: off.
  public var consecutiveGatewayErrors: Int?
  /// How often success-rate and failure-percentage are judged, in milliseconds.
  public var intervalMilliseconds: Int?
  /// The first ejection's length, in milliseconds; the n-th lasts n times as long...
  public var baseEjectionMilliseconds: Int?
  /// ...but never longer than this, in milliseconds.
  public var maxEjectionMilliseconds: Int?
  /// At most this percentage of the endpoints is ejected at once, rounded down: with 3
  /// endpoints and 50, one; with 3 and 10, none.
  public var maxEjectionPercent: Int?
  /// Failure percentage (0-100) over an interval that ejects an endpoint with at least
  /// ``failurePercentageMinimumRequests`` requests in it; absent: off.
  public var failurePercentageThreshold: Int?
  /// The requests an endpoint needs in an interval to be judged by failure percentage.
  public var failurePercentageMinimumRequests: Int?
  /// Success-rate ejection: at an interval's end an endpoint whose success rate is below the
  /// mean of all judged endpoints' rates minus this many standard deviations is ejected (1.9 is
  /// a common choice); absent: off.
  public var successRateStdevFactor: Double?
  /// Endpoints with enough requests that an interval needs before success rate is judged.
  public var successRateMinimumHosts: Int?
  /// The requests an endpoint needs in an interval to count for success rate.
  public var successRateRequestVolume: Int?
  /// When fewer than this percentage of the endpoints are usable (healthy and not ejected), the
  /// balancer uses all of them (panic mode: better some errors than none served); 0 turns it off.
  public var panicThresholdPercent: Int?

  /// The fields the mapping may have.
  public static let fields: Set<String> = [
    "consecutive5xx", "consecutiveGatewayErrors", "intervalMilliseconds", "baseEjectionMilliseconds",
    "maxEjectionMilliseconds", "maxEjectionPercent", "failurePercentageThreshold",
    "failurePercentageMinimumRequests", "panicThresholdPercent", "successRateStdevFactor",
    "successRateMinimumHosts", "successRateRequestVolume",
  ]

  /// Creates a spec.
  public init(
    consecutive5xx: Int? = nil, consecutiveGatewayErrors: Int? = nil, intervalMilliseconds: Int? = nil,
    baseEjectionMilliseconds: Int? = nil, maxEjectionMilliseconds: Int? = nil, maxEjectionPercent: Int? = nil,
    failurePercentageThreshold: Int? = nil, failurePercentageMinimumRequests: Int? = nil,
    panicThresholdPercent: Int? = nil, successRateStdevFactor: Double? = nil,
    successRateMinimumHosts: Int? = nil,
    successRateRequestVolume: Int? = nil
  ) {
    self.consecutive5xx = consecutive5xx
    self.consecutiveGatewayErrors = consecutiveGatewayErrors
    self.intervalMilliseconds = intervalMilliseconds
    self.baseEjectionMilliseconds = baseEjectionMilliseconds
    self.maxEjectionMilliseconds = maxEjectionMilliseconds
    self.maxEjectionPercent = maxEjectionPercent
    self.failurePercentageThreshold = failurePercentageThreshold
    self.failurePercentageMinimumRequests = failurePercentageMinimumRequests
    self.panicThresholdPercent = panicThresholdPercent
    self.successRateStdevFactor = successRateStdevFactor
    self.successRateMinimumHosts = successRateMinimumHosts
    self.successRateRequestVolume = successRateRequestVolume
  }

  /// Every knob with its default filled in.
  public var resolved: Resolved {
    Resolved(
      consecutive5xx: self.consecutive5xx ?? 5, consecutiveGatewayErrors: self.consecutiveGatewayErrors ?? 5,
      intervalNanos: UInt64(self.intervalMilliseconds ?? 10_000) * 1_000_000,
      baseEjectionNanos: UInt64(self.baseEjectionMilliseconds ?? 30_000) * 1_000_000,
      maxEjectionNanos: UInt64(self.maxEjectionMilliseconds ?? 300_000) * 1_000_000,
      maxEjectionPercent: self.maxEjectionPercent ?? 50,
      failurePercentageThreshold: self.failurePercentageThreshold,
      failurePercentageMinimumRequests: self.failurePercentageMinimumRequests ?? 50,
      panicThresholdPercent: self.panicThresholdPercent ?? 50,
      successRateStdevFactor: self.successRateStdevFactor,
      successRateMinimumHosts: self.successRateMinimumHosts ?? 5,
      successRateRequestVolume: self.successRateRequestVolume ?? 100)
  }

  /// The knobs with defaults applied, times in nanoseconds.
  public struct Resolved: Sendable, Hashable {
    /// 5xx in a row that eject (0: off).
    public var consecutive5xx: Int
    /// Gateway errors in a row that eject (0: off).
    public var consecutiveGatewayErrors: Int
    /// The failure-percentage interval.
    public var intervalNanos: UInt64
    /// The first ejection's length.
    public var baseEjectionNanos: UInt64
    /// The longest ejection.
    public var maxEjectionNanos: UInt64
    /// The most endpoints out at once, in percent of all, rounded down.
    public var maxEjectionPercent: Int
    /// The failure percentage that ejects (nil: off).
    public var failurePercentageThreshold: Int?
    /// Requests an interval needs before its failure percentage counts.
    public var failurePercentageMinimumRequests: Int
    /// Below this percentage of usable endpoints, all get traffic.
    public var panicThresholdPercent: Int
    /// Standard deviations below the mean success rate that eject (nil: off).
    public var successRateStdevFactor: Double?
    /// Judged endpoints an interval needs for success rate.
    public var successRateMinimumHosts: Int
    /// Requests an endpoint needs in an interval to be judged by success rate.
    public var successRateRequestVolume: Int
  }

  /// What is wrong with the values, naming the field, or nil.
  public var problem: (field: String, message: String)? {
    let ranges: [(String, Int?, ClosedRange<Int>)] = [
      ("consecutive5xx", self.consecutive5xx, 0...1000),
      ("consecutiveGatewayErrors", self.consecutiveGatewayErrors, 0...1000),
      ("intervalMilliseconds", self.intervalMilliseconds, 100...3_600_000),
      ("baseEjectionMilliseconds", self.baseEjectionMilliseconds, 1...3_600_000),
      ("maxEjectionMilliseconds", self.maxEjectionMilliseconds, 1...86_400_000),
      ("maxEjectionPercent", self.maxEjectionPercent, 0...100),
      ("failurePercentageThreshold", self.failurePercentageThreshold, 0...100),
      ("failurePercentageMinimumRequests", self.failurePercentageMinimumRequests, 1...1_000_000),
      ("panicThresholdPercent", self.panicThresholdPercent, 0...100),
      ("successRateMinimumHosts", self.successRateMinimumHosts, 1...10_000),
      ("successRateRequestVolume", self.successRateRequestVolume, 1...1_000_000),
    ]
    for (field, value, range) in ranges {
      if let value, !range.contains(value) {
        return (field, "\(value) is outside \(range.lowerBound)-\(range.upperBound)")
      }
    }
    if let factor = self.successRateStdevFactor, !(factor >= 0 && factor <= 100) {
      return ("successRateStdevFactor", "\(factor) is outside 0-100")
    }
    let r = self.resolved
    if r.maxEjectionNanos < r.baseEjectionNanos {
      return ("maxEjectionMilliseconds", "must be at least baseEjectionMilliseconds")
    }
    return nil
  }
}
