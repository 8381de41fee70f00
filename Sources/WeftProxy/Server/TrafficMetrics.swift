import Synchronization

/// Request and byte figures per destination service, for `/metrics`: requests by status class,
/// a latency histogram, bytes each way, and connections open now. Recorded once per finished
/// request (HTTP/1.1 request, HTTP/2 stream) or closed opaque connection, under one lock.
public final class TrafficMetrics: Sendable {
  /// The latency histogram's upper bounds, in seconds (from 0.5 ms to 10 s).
  public static let bounds: [Double] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  ]

  /// What one destination and protocol has seen.
  public struct Series: Sendable, Hashable {
    /// Requests by status class (`2xx`...`5xx`), or `error` for no answer at all.
    public var requests: [String: UInt64] = [:]
    /// Requests with latency at most each of ``TrafficMetrics/bounds`` (not cumulative).
    public var buckets = [UInt64](repeating: 0, count: TrafficMetrics.bounds.count + 1)
    /// The latencies' sum, in seconds.
    public var seconds = 0.0
    /// Bytes from the client to the service.
    public var bytesSent: UInt64 = 0
    /// Bytes from the service to the client.
    public var bytesReceived: UInt64 = 0
    /// Opaque connections that ended.
    public var connections: UInt64 = 0
  }

  /// Which series.
  public struct Key: Sendable, Hashable, Comparable {
    /// The destination service.
    public var destination: String
    /// `http`, `http2` or `tcp`.
    public var `protocol`: String

    /// Ordered by destination, then protocol.
    public static func < (a: Key, b: Key) -> Bool {
      (a.destination, a.protocol) < (b.destination, b.protocol)
    }
  }

  /// The workload this sidecar stands beside (the `source` label).
  public let source: String
  /// The status classes' label values, made once rather than per request.
  private static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]
  private let series = Mutex<[Key: Series]>([:])
  private let open = Mutex<[String: Int]>([:])
  private let retries = Mutex<[String: UInt64]>([:])
  private let decisions = Mutex<[Decision: UInt64]>([:])

  /// A resilience decision the sidecar took for a request: a timeout, an injected fault, a
  /// rate-limit refusal. Each is a counter `weft_proxy_<family>_total{destination, kind}`.
  public struct Decision: Hashable, Sendable, Comparable {
    /// `timeouts` (kind `overall`, `per-try`, `deadline`), `faults` (`abort`, `delay`) or
    /// `rate_limited` (kind `service` or `route`).
    public var family: String
    /// The service.
    public var destination: String
    /// Which one.
    public var kind: String

    /// Orders by family, destination, kind.
    public static func < (a: Decision, b: Decision) -> Bool {
      (a.family, a.destination, a.kind) < (b.family, b.destination, b.kind)
    }
  }

  /// The decision families and their help texts, in the order rendered.
  static let decisionFamilies: [(String, String)] = [
    ("timeouts", "Requests answered 504 by a timeout, by kind (overall, per-try, deadline)."),
    ("faults", "Faults a route injected, by kind (abort, delay)."),
    ("rate_limited", "Inbound requests and connections refused by a local rate limit (service or route)."),
    ("policy", "Access policy decisions on inbound requests and connections (allow, deny)."),
  ]

  /// Creates empty metrics for a sidecar beside `source`.
  public init(source: String) { self.source = source }

  /// A finished request: its status (nil: no answer), latency and body bytes.
  public func request(
    to destination: String, protocol: String, status: Int?, nanoseconds: UInt64, sent: Int = 0,
    received: Int = 0
  ) {
    let seconds = Double(nanoseconds) / 1e9
    let bucket = Self.bounds.firstIndex { seconds <= $0 } ?? Self.bounds.count
    let statusClass = status.map { Self.statusClasses[min(max($0 / 100, 1), 5) - 1] } ?? "error"
    func record(_ series: inout Series) {
      series.requests[statusClass, default: 0] += 1
      series.buckets[bucket] += 1
      series.seconds += seconds
      series.bytesSent += UInt64(sent)
      series.bytesReceived += UInt64(received)
    }
    // One lookup of the series, changed in place.
    self.series.withLock { all in
      record(&all[Key(destination: destination, protocol: `protocol`), default: Series()])
    }
  }

  /// An opaque connection that ended, with the bytes it carried each way.
  public func connection(to destination: String, sent: Int, received: Int) {
    func record(_ series: inout Series) {
      series.connections += 1
      series.bytesSent += UInt64(sent)
      series.bytesReceived += UInt64(received)
    }
    self.series.withLock { all in
      record(&all[Key(destination: destination, protocol: "tcp"), default: Series()])
    }
  }

  /// A request to `destination` was tried again.
  public func retried(_ destination: String) {
    self.retries.withLock { $0[destination, default: 0] += 1 }
  }

  /// Counts one decision of `family` (one of ``decisionFamilies``) for `destination`.
  public func decided(_ family: String, _ destination: String, kind: String) {
    self.decisions.withLock {
      $0[Decision(family: family, destination: destination, kind: kind), default: 0] += 1
    }
  }

  /// Decisions so far.
  public var decisionCounts: [Decision: UInt64] { self.decisions.withLock { $0 } }

  /// Retries so far, by destination.
  public var retryCounts: [String: UInt64] { self.retries.withLock { $0 } }

  /// A client connection opened (`+1`) or closed (`-1`) in `direction`.
  public func opened(_ direction: String, _ change: Int) {
    self.open.withLock { $0[direction, default: 0] += change }
  }

  /// The figures so far.
  public var snapshot: [Key: Series] { self.series.withLock { $0 } }

  /// Connections open now, by direction.
  public var openConnections: [String: Int] { self.open.withLock { $0 } }

  /// The Prometheus text for these figures.
  public func render() -> String {
    let all = self.snapshot.sorted { $0.key < $1.key }
    let source = ProxyMetrics.escape(self.source)
    func labels(_ key: Key) -> String {
      "source=\"\(source)\",destination=\"\(ProxyMetrics.escape(key.destination))\",protocol=\"\(key.protocol)\""
    }
    var out =
      "# HELP weft_proxy_requests_total Requests through the sidecar by destination service and status class.\n"
    out += "# TYPE weft_proxy_requests_total counter\n"
    for (key, series) in all {
      for (statusClass, count) in series.requests.sorted(by: { $0.key < $1.key }) {
        out += "weft_proxy_requests_total{\(labels(key)),class=\"\(statusClass)\"} \(count)\n"
      }
    }
    out += "# HELP weft_proxy_request_duration_seconds Time from a request's start to its answer's end.\n"
    out += "# TYPE weft_proxy_request_duration_seconds histogram\n"
    for (key, series) in all where !series.requests.isEmpty {
      var cumulative: UInt64 = 0
      for (i, bound) in Self.bounds.enumerated() {
        cumulative += series.buckets[i]
        out += "weft_proxy_request_duration_seconds_bucket{\(labels(key)),le=\"\(bound)\"} \(cumulative)\n"
      }
      cumulative += series.buckets[Self.bounds.count]
      out += "weft_proxy_request_duration_seconds_bucket{\(labels(key)),le=\"+Inf\"} \(cumulative)\n"
      out += "weft_proxy_request_duration_seconds_sum{\(labels(key))} \(series.seconds)\n"
      out += "weft_proxy_request_duration_seconds_count{\(labels(key))} \(cumulative)\n"
    }
    out += "# HELP weft_proxy_bytes_total Body bytes through the sidecar, by direction.\n"
    out += "# TYPE weft_proxy_bytes_total counter\n"
    for (key, series) in all {
      out += "weft_proxy_bytes_total{\(labels(key)),direction=\"sent\"} \(series.bytesSent)\n"
      out += "weft_proxy_bytes_total{\(labels(key)),direction=\"received\"} \(series.bytesReceived)\n"
    }
    out += "# HELP weft_proxy_tcp_connections_total Opaque connections to a service that ended.\n"
    out += "# TYPE weft_proxy_tcp_connections_total counter\n"
    for (key, series) in all where key.protocol == "tcp" {
      out += "weft_proxy_tcp_connections_total{\(labels(key))} \(series.connections)\n"
    }
    out += "# HELP weft_proxy_retries_total Requests tried again, by destination service.\n"
    out += "# TYPE weft_proxy_retries_total counter\n"
    for (destination, count) in self.retryCounts.sorted(by: { $0.key < $1.key }) {
      out +=
        "weft_proxy_retries_total{source=\"\(source)\",destination=\"\(ProxyMetrics.escape(destination))\"} \(count)\n"
    }
    let decisions = self.decisionCounts.sorted { $0.key < $1.key }
    for (family, help) in Self.decisionFamilies {
      out += "# HELP weft_proxy_\(family)_total \(help)\n# TYPE weft_proxy_\(family)_total counter\n"
      for (decision, count) in decisions where decision.family == family {
        out +=
          "weft_proxy_\(family)_total{source=\"\(source)\",destination=\"\(ProxyMetrics.escape(decision.destination))\",kind=\"\(decision.kind)\"} \(count)\n"
      }
    }
    out += "# HELP weft_proxy_open_connections Client connections open now, by direction.\n"
    out += "# TYPE weft_proxy_open_connections gauge\n"
    for (direction, count) in self.openConnections.sorted(by: { $0.key < $1.key }) {
      out += "weft_proxy_open_connections{source=\"\(source)\",direction=\"\(direction)\"} \(count)\n"
    }
    return out
  }
}
