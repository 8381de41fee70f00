/// The load-balancing policy of a service, as written in its spec.
///
/// The raw values are the spelling used in Service resources.
public enum BalancerPolicy: String, Hashable, Sendable, Codable, CaseIterable {
  /// Weighted smooth round robin: each healthy endpoint in turn, in proportion to its weight.
  case roundRobin = "round_robin"
  /// Power of two choices: of two random healthy endpoints, the one with fewer requests in flight.
  case leastRequest = "least_request"
  /// Latency-aware power of two choices: of two random healthy endpoints, the one with the lower
  /// peak-EWMA round-trip time multiplied by its requests in flight plus one (as Linkerd does).
  case ewma = "ewma"
  /// Consistent hashing on a request key (header, cookie or source address); an endpoint joining
  /// or leaving moves only the keys it gains or loses.
  case ringHash = "ring_hash"
  /// A random healthy endpoint, in proportion to its weight.
  case random = "random"
}
