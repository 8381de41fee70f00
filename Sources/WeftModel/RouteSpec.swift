/// The spec of a `Route`: how the sidecars send the requests to one service. Rules are tried in
/// order; the first whose `match` fits a request decides where it goes, split by weight over
/// subsets of the service's endpoints chosen by label (a 90/10 canary of `version: v1` and
/// `version: v2`). A request no rule matches is balanced over all of the service's endpoints.
///
/// A rule with an HTTP match (headers, path, method) applies to `http` ports only; a rule
/// without one applies to every port, opaque TCP connections included.
public struct RouteSpec: Codable, Sendable, Hashable {
  /// The service whose requests this routes (one Route per service).
  public var service: String
  /// The rules, first match wins.
  public var rules: [RouteRule]

  /// The fields a spec may have.
  public static let fields: Set<String> = ["service", "rules"]

  /// Creates a spec.
  public init(service: String, rules: [RouteRule]) {
    self.service = service
    self.rules = rules
  }
}

/// One rule of a route: which requests, and where they go.
public struct RouteRule: Codable, Sendable, Hashable {
  /// A name for the rule (for metrics and `/config`).
  public var name: String?
  /// Which requests; absent matches every request and connection.
  public var match: RouteMatch?
  /// Where matching requests go, split by weight; at least one.
  public var backends: [RouteBackend]
  /// Failures to inject into matching HTTP requests.
  public var fault: RouteFault?
  /// Retries of matching HTTP requests.
  public var retries: RouteRetries?
  /// How long a matching HTTP request may take in all (retries included), in milliseconds;
  /// after that the client gets 504.
  public var timeoutMilliseconds: Int?
  /// A local rate limit for matching requests, enforced by each endpoint's sidecar on top of
  /// the service's own.
  public var rateLimit: RateLimitSpec?

  /// The fields a rule may have.
  public static let fields: Set<String> = [
    "name", "match", "backends", "fault", "retries", "timeoutMilliseconds", "rateLimit",
  ]

  /// Creates a rule.
  public init(
    name: String? = nil, match: RouteMatch? = nil, backends: [RouteBackend], fault: RouteFault? = nil
  ) {
    self.name = name
    self.match = match
    self.backends = backends
    self.fault = fault
  }
}

/// What a request must carry for a rule to apply; every field given must match.
public struct RouteMatch: Codable, Sendable, Hashable {
  /// Header values that must be equal (names compare without case, values exactly).
  public var headers: [String: String]?
  /// The path (without query) must be exactly this.
  public var path: String?
  /// The path must start with this.
  public var pathPrefix: String?
  /// The request method, such as `GET`.
  public var method: String?

  /// The fields a match may have.
  public static let fields: Set<String> = ["headers", "path", "pathPrefix", "method"]

  /// Creates a match.
  public init(
    headers: [String: String]? = nil, path: String? = nil, pathPrefix: String? = nil, method: String? = nil
  ) {
    self.headers = headers
    self.path = path
    self.pathPrefix = pathPrefix
    self.method = method
  }

  /// True when the match looks into HTTP requests (and so cannot apply to opaque TCP).
  public var needsHTTP: Bool {
    !(self.headers ?? [:]).isEmpty || self.path != nil || self.pathPrefix != nil || self.method != nil
  }

  /// True when a request with this method, target (path and query) and headers matches.
  /// `header` returns a header's values joined, or nil when absent; names are given lower-cased.
  public func matches(method: String, target: String, header: (String) -> String?) -> Bool {
    if let wanted = self.method, wanted != method { return false }
    let path =
      target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first
      .map(String.init) ?? target
    if let exact = self.path, exact != path { return false }
    if let prefix = self.pathPrefix, !path.hasPrefix(prefix) { return false }
    for (name, value) in self.headers ?? [:] where header(name.lowercased()) != value {
      return false
    }
    return true
  }
}

/// A share of a rule's traffic and the endpoints that serve it.
public struct RouteBackend: Codable, Sendable, Hashable {
  /// Labels an endpoint must all carry to be in this subset; absent: every endpoint.
  public var subset: [String: String]?
  /// The relative share (default 1); 0 sends nothing.
  public var weight: Int?

  /// The fields a backend may have.
  public static let fields: Set<String> = ["subset", "weight"]

  /// Creates a backend.
  public init(subset: [String: String]? = nil, weight: Int? = nil) {
    self.subset = subset
    self.weight = weight
  }

  /// The weight, 1 when absent.
  public var effectiveWeight: Int { self.weight ?? 1 }

  /// True when an endpoint with these labels belongs to the subset.
  public func contains(_ labels: [String: String]) -> Bool {
    (self.subset ?? [:]).allSatisfy { labels[$0.key] == $0.value }
  }
}
