/// One endpoint of a service as handed to a balancer: where it is, how much traffic it should
/// get relative to its peers, and whether it may get any at all.
public struct BalancerEndpoint: Hashable, Sendable {
  /// Where the endpoint listens.
  public var address: EndpointAddress
  /// The relative share of traffic, at least 1. Endpoints of equal weight share evenly.
  public var weight: UInt32
  /// Whether the endpoint passes its health checks. Unhealthy endpoints never get traffic.
  public var isHealthy: Bool

  /// Creates an endpoint. A weight of 0 is raised to 1; to take an endpoint out of rotation,
  /// mark it unhealthy or leave it out.
  public init(_ address: EndpointAddress, weight: UInt32 = 1, isHealthy: Bool = true) {
    self.address = address
    self.weight = max(weight, 1)
    self.isHealthy = isHealthy
  }
}
