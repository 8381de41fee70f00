/// The spec of a `Workload`: a network namespace attached to one network on one host.
public struct WorkloadSpec: Codable, Sendable, Hashable {
  /// The network's name.
  public var network: String
  /// The host's name.
  public var host: String
  /// The workload's address in the host's subnet (set by the agent's IPAM when absent).
  public var address: String?
  /// The workload interface's MAC.
  public var mac: String?

  /// The fields a spec may have.
  public static let fields: Set<String> = ["network", "host", "address", "mac"]

  /// Creates a spec.
  public init(network: String, host: String, address: String? = nil, mac: String? = nil) {
    self.network = network
    self.host = host
    self.address = address
    self.mac = mac
  }
}
