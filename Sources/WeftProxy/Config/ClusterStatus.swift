/// A service's endpoints as the admin page shows them.
public struct ClusterStatus: Codable, Sendable, Hashable {
  /// One endpoint.
  public struct Endpoint: Codable, Sendable, Hashable {
    /// Its address.
    public var address: String
    /// Whether it gets traffic.
    public var healthy: Bool
    /// Connections (or requests) open now.
    public var active: Int
    /// Finished.
    public var completed: UInt64
    /// Finished with a failure (connect failed).
    public var failed: UInt64
    /// True while outlier detection has it out.
    public var ejected: Bool?
    /// Times outlier detection ejected it (when detection is on).
    public var ejections: Int?
  }

  /// One weighted backend of a route rule.
  public struct Backend: Codable, Sendable, Hashable {
    /// The rule (its name or `#index`).
    public var rule: String
    /// The labels choosing its endpoints.
    public var subset: [String: String]
    /// Its weight.
    public var weight: Int
    /// How many connections or requests the rule sent it.
    public var picked: UInt64
    /// Its endpoints.
    public var endpoints: [Endpoint]
  }

  /// The service.
  public var service: String
  /// Its virtual IP.
  public var vip: String
  /// Its balancing policy.
  public var policy: String
  /// Its endpoints (as balanced when no route rule matches).
  public var endpoints: [Endpoint]
  /// Its route's backends, when it has a route.
  public var routes: [Backend]?
  /// True while too few endpoints are usable and all get traffic (panic mode).
  public var panic: Bool?
}
