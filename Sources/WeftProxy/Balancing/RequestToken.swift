/// A request in flight on an endpoint, from ``LoadBalancer/start(_:now:)`` to
/// ``LoadBalancer/finish(_:now:success:)``.
///
/// Finish every token exactly once. A token whose endpoint has left the set in the meantime is
/// ignored, even if an endpoint with the same address has joined since.
public struct RequestToken: Hashable, Sendable {
  /// The endpoint the request went to.
  public let address: EndpointAddress
  /// When the request started, in nanoseconds on the caller's monotonic clock.
  public let startedAt: UInt64
  /// Which incarnation of the endpoint the request went to.
  let generation: UInt64
}
