import WeftIdentity
import WeftModel

/// What an endpoint's sidecar does with one inbound HTTP request or HTTP/2 stream: on to the
/// workload, or answered here (the access policy's 403, the local rate limit's 429). Shared by
/// the HTTP/1.1 forwarder and the HTTP/2 session, so that both hold every call alike.
enum InboundAdmission {
  /// On to the workload itself.
  case admitted(Upstream)
  /// Answered by the sidecar.
  case refused(service: String, status: Int, message: String, marker: String, retryAfter: Int?)

  /// Holds a call to the workload's `address` and `port` from `peer` (nil: plaintext) to the
  /// access policies and then the local rate limits of the service it calls: the one the calling
  /// sidecar `named` (believed only from a verified peer: a plaintext caller could name the
  /// laxest one), else every service on the port must allow it and `fallback`'s limits apply.
  /// Every decision is counted in `metrics`.
  static func check(
    table: ServiceTable, metrics: TrafficMetrics, address: UInt32, port: UInt16, peer: SPIFFEID?,
    named header: String?, fallback: String, protocol: ServiceProtocol, request: RequestView, now: UInt64
  ) -> InboundAdmission {
    let named = peer == nil ? nil : header
    let service = table.inboundService(address: address, port: port, named: named)?.service ?? fallback
    let access =
      named == nil
      ? table.authorizeAll(address: address, port: port, peer: peer, request: request)
      : table.authorize(service: service, peer: peer, request: request)
    metrics.decided("policy", service, kind: access.allowed ? "allow" : "deny")
    guard access.allowed else {
      AccessLog.denied(service: service, decision: access)
      return .refused(
        service: service, status: 403, message: "access denied: \(access.reason)", marker: "policy",
        retryAfter: nil)
    }
    if let refusal = table.admit(service: service, request: request, now: now) {
      metrics.decided("rate_limited", service, kind: refusal.route == nil ? "service" : "route")
      return .refused(
        service: service, status: 429, message: "\(service): local rate limit reached",
        marker: "rate-limited",
        retryAfter: TokenBucket.retryAfterSeconds(refusal.wait))
    }
    return .admitted(
      Upstream(
        service: service, endpoint: EndpointAddress(ipv4: address, port: port), protocol: `protocol`,
        rule: nil,
        pool: "", token: nil))
  }
}
