import WeftModel

/// Chooses the endpoint of a service for each request. Sans-IO: it never reads a clock or touches
/// a socket; the caller passes the time and reports when requests start and finish.
///
/// A balancer is not thread-safe and not `Sendable`. The proxy keeps one per service per event
/// loop and uses it only from that loop, so picks cost no locking.
///
/// Lifecycle of a request:
///
/// ```swift
/// guard let token = balancer.begin(context, now: clock.now) else { return .noHealthyEndpoint }
/// // ... forward the request to token.address ...
/// balancer.finish(token, now: clock.now, success: true)
/// ```
public protocol LoadBalancer: AnyObject {
  /// The policy this balancer implements.
  var policy: BalancerPolicy { get }

  /// Replaces the endpoint set. Endpoints whose address stays keep their load and latency
  /// history; requests in flight on endpoints that leave are forgotten.
  func update(endpoints: [BalancerEndpoint])

  /// Chooses a healthy endpoint for a request, or returns `nil` when there is none.
  ///
  /// - Parameters:
  ///   - context: The request's hash key; only `ring_hash` uses it.
  ///   - now: Nanoseconds on a monotonic clock; only `ewma` uses it.
  func pick(_ context: PickContext, now: UInt64) -> EndpointAddress?

  /// Records that a request started on `endpoint`. Returns `nil` when the endpoint is not in the
  /// set.
  func start(_ endpoint: EndpointAddress, now: UInt64) -> RequestToken?

  /// Records that a request finished; its round-trip time is `now - token.startedAt`.
  ///
  /// - Parameter success: `false` for a transport failure (refused, reset, timed out), which may
  ///   count as slow (``PeakEWMAConfiguration/failurePenaltyNanos``). An HTTP error status is a
  ///   success here.
  func finish(_ token: RequestToken, now: UInt64, success: Bool)

  /// What the balancer tracks for `endpoint`, or `nil` when it is not in the set.
  func stats(for endpoint: EndpointAddress) -> EndpointStats?
}

extension LoadBalancer {
  /// Picks an endpoint and starts a request on it.
  public func begin(_ context: PickContext = .none, now: UInt64) -> RequestToken? {
    guard let address = self.pick(context, now: now) else { return nil }
    return self.start(address, now: now)
  }
}
