/// What a balancer knows about one endpoint, for the admin page and metrics.
public struct EndpointStats: Hashable, Sendable {
  /// The endpoint.
  public var endpoint: BalancerEndpoint
  /// Requests started and not yet finished.
  public var outstanding: Int
  /// The peak-EWMA round-trip estimate in nanoseconds as of the last observation.
  public var rttEstimateNanos: Double
  /// Requests finished.
  public var completed: UInt64
  /// Requests finished with `success: false`.
  public var failed: UInt64

  /// Creates a snapshot.
  public init(
    endpoint: BalancerEndpoint, outstanding: Int, rttEstimateNanos: Double, completed: UInt64,
    failed: UInt64
  ) {
    self.endpoint = endpoint
    self.outstanding = outstanding
    self.rttEstimateNanos = rttEstimateNanos
    self.completed = completed
    self.failed = failed
  }
}
