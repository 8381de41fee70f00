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

extension ClusterStatus {
  /// Each endpoint once, with what every pool it is in knows of it added up (the service's own
  /// pool and each route backend's, which balance and eject on their own): requests open,
  /// finished and failed summed, ejected when any pool has it out, ejections summed. Healthy
  /// is the service pool's verdict.
  public var endpointTotals: [Endpoint] {
    var totals = self.endpoints
    var index = Dictionary(totals.enumerated().map { ($1.address, $0) }, uniquingKeysWith: { a, _ in a })
    for endpoint in (self.routes ?? []).flatMap(\.endpoints) {
      guard let i = index[endpoint.address] else {
        index[endpoint.address] = totals.count
        totals.append(endpoint)
        continue
      }
      totals[i].active += endpoint.active
      totals[i].completed += endpoint.completed
      totals[i].failed += endpoint.failed
      if endpoint.ejected == true { totals[i].ejected = true }
      if let ejections = endpoint.ejections { totals[i].ejections = (totals[i].ejections ?? 0) + ejections }
    }
    return totals
  }
}
