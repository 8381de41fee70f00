/// The kinds of resource Weft knows.
public enum ResourceKind: String, Codable, Sendable, CaseIterable, Hashable {
  /// An overlay network: address range and VNI.
  case network = "Network"
  /// A host, registered by its agent.
  case host = "Host"
  /// A workload (a container's network namespace) attached to a network on a host.
  case workload = "Workload"
  /// A service: a name and virtual IP for the workloads matching a selector.
  case service = "Service"
  /// A route: header matching and weighted splits over subsets of one service's endpoints.
  case route = "Route"
  /// An access policy: which callers may reach a service, a namespace or the mesh.
  case accessPolicy = "AccessPolicy"

  /// The lower-case plural used in API paths and on the command line (`networks`).
  public var plural: String {
    self == .accessPolicy ? "accesspolicies" : self.rawValue.lowercased() + "s"
  }

  /// Parses a kind as users type it: `Network`, `network`, `networks`, `net`.
  public init?(userInput text: String) {
    let t = text.lowercased()
    let aliases: [String: ResourceKind] = [
      "net": .network, "wl": .workload, "svc": .service, "rt": .route, "policy": .accessPolicy,
      "policies": .accessPolicy, "ap": .accessPolicy,
    ]
    if let k = ResourceKind.allCases.first(where: { $0.rawValue.lowercased() == t || $0.plural == t }) {
      self = k
    } else if let k = aliases[t] {
      self = k
    } else {
      return nil
    }
  }
}
