/// Failures a route rule injects on purpose, to rehearse them: a fixed delay before a share of
/// requests is sent on, and an answer with an error status instead of sending a share at all.
/// Shares are exact and evenly spread (5% is every twentieth request), not drawn at random.
public struct RouteFault: Codable, Sendable, Hashable {
  /// Delay a share of the requests.
  public struct Delay: Codable, Sendable, Hashable {
    /// How long, in milliseconds.
    public var milliseconds: Int
    /// Which share, in percent (0-100).
    public var percent: Double

    /// The fields a delay may have.
    public static let fields: Set<String> = ["milliseconds", "percent"]

    /// Creates a delay.
    public init(milliseconds: Int, percent: Double) {
      self.milliseconds = milliseconds
      self.percent = percent
    }
  }

  /// Answer a share of the requests with a status, never sending them.
  public struct Abort: Codable, Sendable, Hashable {
    /// The status, 400-599.
    public var status: Int
    /// Which share, in percent (0-100).
    public var percent: Double

    /// The fields an abort may have.
    public static let fields: Set<String> = ["status", "percent"]

    /// Creates an abort.
    public init(status: Int, percent: Double) {
      self.status = status
      self.percent = percent
    }
  }

  /// The delay, if any.
  public var delay: Delay?
  /// The abort, if any.
  public var abort: Abort?

  /// The fields a fault may have.
  public static let fields: Set<String> = ["delay", "abort"]

  /// Creates a fault.
  public init(delay: Delay? = nil, abort: Abort? = nil) {
    self.delay = delay
    self.abort = abort
  }

  /// What is wrong, as (field under `fault`, problem), or nil.
  public var problem: (field: String, message: String)? {
    if let delay = self.delay {
      if !(0...3_600_000).contains(delay.milliseconds) {
        return ("delay.milliseconds", "\(delay.milliseconds) is outside 0-3600000")
      }
      if !(0...100).contains(delay.percent) { return ("delay.percent", "\(delay.percent) is outside 0-100") }
    }
    if let abort = self.abort {
      if !(400...599).contains(abort.status) {
        return ("abort.status", "\(abort.status) is not an error status (400-599)")
      }
      if !(0...100).contains(abort.percent) { return ("abort.percent", "\(abort.percent) is outside 0-100") }
    }
    return nil
  }
}

/// Picks an exact, evenly spread share of events: each event adds `percent` to a credit, and
/// one fires whenever the credit reaches 100.
public struct ShareCounter: Sendable, Hashable {
  private var credit = 0.0

  /// Creates a counter.
  public init() {}

  /// True for this event when it falls in a `percent` share.
  public mutating func next(percent: Double) -> Bool {
    self.credit += percent
    guard self.credit >= 100 else { return false }
    self.credit -= 100
    return true
  }
}
