import WeftModel

/// What one request's answer says about its endpoint, for outlier detection.
public enum RequestOutcome: Sendable, Hashable {
  /// Any answer below 500.
  case success
  /// A 5xx that is not a gateway error (500, 501, 505, ...).
  case serverError
  /// 502, 503, 504, or no answer at all (connect failure, reset, closed mid-way).
  case gatewayError

  /// The outcome of an answer with `status`, or of no answer (nil).
  public init(status: Int?) {
    switch status {
    case nil, 502?, 503?, 504?: self = .gatewayError
    case let s? where s >= 500: self = .serverError
    default: self = .success
    }
  }
}

/// Passive outlier detection over one set of endpoints, sans-IO: the caller records outcomes
/// and calls ``tick(now:)``; times are nanoseconds on any monotonic clock.
///
/// An endpoint is ejected after `consecutive5xx` 5xx answers in a row or
/// `consecutiveGatewayErrors` gateway errors in a row, or when an interval ends with its failure
/// percentage at or over the threshold over at least the minimum requests, or with its success
/// rate below the mean of the judged endpoints' rates minus a factor of their standard deviation
/// (when enough endpoints had enough requests in the interval). Its n-th ejection
/// lasts n x base, capped at the maximum; when it is over the endpoint gets requests again and
/// its consecutive counts start from zero. No ejection happens that would put more than
/// `maxEjectionPercent` of the endpoints out at once (rounded down).
public struct OutlierDetector<Key: Hashable & Sendable>: Sendable {
  /// One endpoint's record.
  public struct Record: Sendable, Hashable {
    /// 5xx answers in a row now.
    public var consecutive5xx = 0
    /// Gateway errors in a row now.
    public var consecutiveGatewayErrors = 0
    /// Times ejected so far.
    public var ejections = 0
    /// Ejected until then (nil: not ejected).
    public var ejectedUntil: UInt64?
    /// Requests in the current interval.
    public var intervalRequests = 0
    /// Failures (5xx or no answer) in the current interval.
    public var intervalFailures = 0
  }

  /// The knobs.
  public let configuration: OutlierDetectionSpec.Resolved
  /// Every endpoint's record.
  public private(set) var records: [Key: Record] = [:]
  private var intervalEnds: UInt64?

  /// Creates a detector.
  public init(configuration: OutlierDetectionSpec.Resolved) {
    self.configuration = configuration
  }

  /// Sets the endpoints; those that stay keep their records.
  public mutating func update(endpoints: [Key]) {
    var next: [Key: Record] = [:]
    for key in endpoints { next[key] = self.records[key] ?? Record() }
    self.records = next
  }

  /// True while `key` is ejected.
  public func isEjected(_ key: Key, now: UInt64) -> Bool {
    guard let until = self.records[key]?.ejectedUntil else { return false }
    return now < until
  }

  /// Endpoints ejected now.
  public func ejectedCount(now: UInt64) -> Int {
    self.records.values.count { $0.ejectedUntil.map { now < $0 } ?? false }
  }

  /// How many endpoints may be out at once: the percentage of all, rounded down.
  public var maximumEjected: Int { self.records.count * self.configuration.maxEjectionPercent / 100 }

  /// Records one request's outcome; returns true when it ejected the endpoint.
  @discardableResult
  public mutating func record(_ outcome: RequestOutcome, for key: Key, now: UInt64) -> Bool {
    guard var record = self.records[key] else { return false }
    self.startIntervalIfNeeded(now)
    record.intervalRequests += 1
    switch outcome {
    case .success:
      record.consecutive5xx = 0
      record.consecutiveGatewayErrors = 0
    case .serverError:
      record.consecutive5xx += 1
      record.consecutiveGatewayErrors = 0
      record.intervalFailures += 1
    case .gatewayError:
      record.consecutive5xx += 1
      record.consecutiveGatewayErrors += 1
      record.intervalFailures += 1
    }
    self.records[key] = record
    let c = self.configuration
    let tripped =
      (c.consecutive5xx > 0 && record.consecutive5xx >= c.consecutive5xx)
      || (c.consecutiveGatewayErrors > 0 && record.consecutiveGatewayErrors >= c.consecutiveGatewayErrors)
    guard tripped, !self.isEjected(key, now: now) else { return false }
    return self.eject(key, now: now)
  }

  /// Ends the current interval when it is over: endpoints whose failure percentage reached the
  /// threshold, or whose success rate fell below the success-rate bar, are ejected (worst first,
  /// within the cap). Returns the endpoints ejected.
  @discardableResult
  public mutating func tick(now: UInt64) -> [Key] {
    self.startIntervalIfNeeded(now)
    guard let ends = self.intervalEnds, now >= ends else { return [] }
    self.intervalEnds = now + self.configuration.intervalNanos
    var candidates = Set<Key>()
    let c = self.configuration
    if let threshold = c.failurePercentageThreshold {
      for (key, r) in self.records
      where r.intervalRequests >= c.failurePercentageMinimumRequests
        && r.intervalFailures * 100 >= threshold * r.intervalRequests
      {
        candidates.insert(key)
      }
    }
    if let factor = c.successRateStdevFactor {
      candidates.formUnion(Self.belowSuccessRateBar(self.records, factor: factor, configuration: c))
    }
    let worstFirst = candidates.sorted { a, b in
      let (x, y) = (self.records[a]!, self.records[b]!)
      return x.intervalFailures * y.intervalRequests > y.intervalFailures * x.intervalRequests
    }
    var ejected: [Key] = []
    for key in worstFirst where !self.isEjected(key, now: now) {
      if self.eject(key, now: now) { ejected.append(key) }
    }
    for key in self.records.keys {
      self.records[key]!.intervalRequests = 0
      self.records[key]!.intervalFailures = 0
    }
    return ejected
  }

  /// The endpoints whose success rate in the interval is below mean - factor x standard
  /// deviation of the rates of every endpoint with the request volume, when there are enough of
  /// those (population deviation, as Envoy computes it).
  static func belowSuccessRateBar(
    _ records: [Key: Record], factor: Double, configuration c: OutlierDetectionSpec.Resolved
  ) -> [Key] {
    let judged = records.filter { $0.value.intervalRequests >= c.successRateRequestVolume }.map { key, r in
      (key, Double(r.intervalRequests - r.intervalFailures) / Double(r.intervalRequests))
    }
    guard judged.count >= c.successRateMinimumHosts, !judged.isEmpty else { return [] }
    let mean = judged.map(\.1).reduce(0, +) / Double(judged.count)
    let variance = judged.map { ($0.1 - mean) * ($0.1 - mean) }.reduce(0, +) / Double(judged.count)
    let bar = mean - factor * variance.squareRoot()
    return judged.filter { $0.1 < bar }.map(\.0)
  }

  /// The earliest time at which ``tick(now:)`` or an ejection's end changes anything.
  public func nextDeadline(now: UInt64) -> UInt64? {
    let ends = self.records.values.compactMap(\.ejectedUntil).filter { $0 > now }
    return ([self.intervalEnds].compactMap { $0 } + ends).min()
  }

  private mutating func startIntervalIfNeeded(_ now: UInt64) {
    if self.intervalEnds == nil { self.intervalEnds = now + self.configuration.intervalNanos }
  }

  private mutating func eject(_ key: Key, now: UInt64) -> Bool {
    guard self.ejectedCount(now: now) < self.maximumEjected, var record = self.records[key] else {
      return false
    }
    record.ejections += 1
    let length = min(
      self.configuration.baseEjectionNanos * UInt64(record.ejections), self.configuration.maxEjectionNanos)
    record.ejectedUntil = now + length
    record.consecutive5xx = 0
    record.consecutiveGatewayErrors = 0
    self.records[key] = record
    return true
  }
}
