/// The sidecar's metrics in the Prometheus text exposition format (version 0.0.4).
public enum ProxyMetrics {
  /// Renders the counters, per-endpoint figures (summed over the service's pool and its route
  /// backends' pools) and snapshot version.
  public static func render(counters: SidecarProxy.ProxyCounters, clusters: [ClusterStatus], version: Int)
    -> String
  {
    var out = """
      # HELP weft_proxy_connections_total Connections the sidecar handled, by direction and outcome.
      # TYPE weft_proxy_connections_total counter

      """
    let connections: [(String, String, Int)] = [
      ("outbound", "service", counters.outboundToService),
      ("outbound", "passthrough", counters.outboundPassthrough),
      ("outbound", "failed", counters.outboundFailed),
      ("inbound", "relayed", counters.inbound),
      ("inbound", "failed", counters.inboundFailed),
      ("outbound", "mtls", counters.outboundMTLS),
      ("inbound", "mtls", counters.inboundMTLS),
      ("inbound", "plaintext", counters.inboundPlaintext),
      ("inbound", "plaintext-refused", counters.inboundPlaintextRefused),
    ]
    for (direction, outcome, value) in connections {
      out += "weft_proxy_connections_total{direction=\"\(direction)\",outcome=\"\(outcome)\"} \(value)\n"
    }
    let families: [(String, String, String, (ClusterStatus.Endpoint) -> String)] = [
      (
        "weft_proxy_endpoint_active", "gauge", "Connections open to a service endpoint now.",
        { String($0.active) }
      ),
      (
        "weft_proxy_endpoint_completed_total", "counter", "Connections to a service endpoint that ended.",
        { String($0.completed) }
      ),
      (
        "weft_proxy_endpoint_failed_total", "counter",
        "Connections to a service endpoint that failed to open.",
        { String($0.failed) }
      ),
      (
        "weft_proxy_endpoint_healthy", "gauge", "1 when the endpoint gets traffic.",
        { $0.healthy ? "1" : "0" }
      ),
      (
        "weft_proxy_endpoint_ejected", "gauge", "1 while outlier detection has the endpoint ejected.",
        { $0.ejected == true ? "1" : "0" }
      ),
      (
        "weft_proxy_endpoint_ejections_total", "counter", "Times outlier detection ejected the endpoint.",
        { String($0.ejections ?? 0) }
      ),
    ]
    for (name, type, help, value) in families {
      out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
      for cluster in clusters {
        for endpoint in cluster.endpointTotals {
          out +=
            "\(name){service=\"\(Self.escape(cluster.service))\",endpoint=\"\(endpoint.address)\"} \(value(endpoint))\n"
        }
      }
    }
    out += "# HELP weft_proxy_snapshot_version The version of the configuration snapshot in use.\n"
    out += "# TYPE weft_proxy_snapshot_version gauge\nweft_proxy_snapshot_version \(version)\n"
    return out
  }

  /// Requests a circuit breaker refused, and retries a budget refused, by service.
  public static func render(
    overflows: [String: [CircuitBreaker.Limit: UInt64]], retriesExhausted: [String: UInt64]
  )
    -> String
  {
    var out =
      "# HELP weft_proxy_overflow_total Requests refused at once by a service's circuit breaker, by limit.\n"
    out += "# TYPE weft_proxy_overflow_total counter\n"
    for (service, limits) in overflows.sorted(by: { $0.key < $1.key }) {
      for (limit, count) in limits.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
        out +=
          "weft_proxy_overflow_total{destination=\"\(Self.escape(service))\",limit=\"\(limit.rawValue)\"} \(count)\n"
      }
    }
    out += "# HELP weft_proxy_retry_budget_exhausted_total Retries the retry budget refused.\n"
    out += "# TYPE weft_proxy_retry_budget_exhausted_total counter\n"
    for (service, count) in retriesExhausted.sorted(by: { $0.key < $1.key }) {
      out += "weft_proxy_retry_budget_exhausted_total{destination=\"\(Self.escape(service))\"} \(count)\n"
    }
    return out
  }

  /// Escapes a label value (backslash, double quote, newline).
  static func escape(_ value: String) -> String {
    var out = ""
    for c in value {
      switch c {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "\n": out += "\\n"
      default: out.append(c)
      }
    }
    return out
  }
}
