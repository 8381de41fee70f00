import Foundation

/// One host of a lab: a network namespace wired to the lab's underlay switch.
public struct LabHost: Codable, Sendable, Equatable {
  /// The host's name within the lab (`host1`, `host2`, ...).
  public var name: String
  /// The network namespace that is the host.
  public var namespace: String
  /// The host's underlay interface inside its namespace.
  public var interface: String
  /// The host's underlay address with prefix, e.g. `198.18.0.1/24`.
  public var underlay: String
  /// The switch port (the veth end in the switch namespace).
  public var switchPort: String
}

/// What a lab is made of, saved under `/run/weft/labs/NAME/lab.json` so that a lab outlives the
/// command that made it and later commands (exec, down, and the agents of later issues) find it.
public struct LabState: Codable, Sendable, Equatable {
  /// The lab's name.
  public var name: String
  /// When it was brought up.
  public var created: Date
  /// The underlay network, e.g. `198.18.0.0/24`.
  public var underlay: String
  /// The namespace holding the underlay switch (a bridge).
  public var switchNamespace: String
  /// The bridge inside the switch namespace.
  public var switchBridge: String
  /// The hosts, in order.
  public var hosts: [LabHost]

  /// The namespace for a target name: a host's name, or `switch`.
  public func namespace(for target: String) -> String? {
    if target == "switch" { return self.switchNamespace }
    return self.hosts.first { $0.name == target }?.namespace
  }
}
