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
  /// The controller and agents, when the lab runs a control plane.
  public var control: LabControlPlane?
  /// Workloads added with `weft lab workload add`.
  public var workloads: [LabWorkload]?

  /// The namespace for a target name: a host's name, a workload's name, or `switch`.
  public func namespace(for target: String) -> String? {
    if target == "switch" { return self.switchNamespace }
    if let h = self.hosts.first(where: { $0.name == target }) { return h.namespace }
    return self.workloads?.first { $0.name == target }?.namespace
  }
}

/// The lab's control plane: a controller in the root namespace (loopback and a unix socket) and
/// one agent per host, each in its host's namespace.
public struct LabControlPlane: Codable, Sendable, Equatable {
  /// The controller's pid.
  public var controllerPID: Int32
  /// The controller's URLs: loopback TCP for clients in the root namespace, a unix socket for
  /// agents in the host namespaces.
  public var urls: [String]
  /// The API token.
  public var token: String
  /// The datapath the agents run.
  public var datapath: String
  /// Agent pids by host name.
  public var agents: [String: Int32]
  /// The weft executable the controller and agents run (restarts use the same one).
  public var executable: String?
  /// The control plane's CA certificate (PEM file) that clients trust the controller by.
  public var ca: String?
  /// Extra arguments the controller runs with (restarts too), such as certificate lifetimes.
  public var controllerArguments: [String]?

  /// The loopback URL.
  public var loopbackURL: String? { self.urls.first { $0.hasPrefix("https://") } }
  /// The unix-socket URL.
  public var socketURL: String? { self.urls.first { $0.hasPrefix("https+unix://") } }
}

/// A workload in a lab: a namespace attached to a network on a host.
public struct LabWorkload: Codable, Sendable, Equatable {
  /// The workload's name.
  public var name: String
  /// The host it runs on.
  public var host: String
  /// The network it is attached to.
  public var network: String
  /// Its namespace.
  public var namespace: String
  /// Its address with prefix length.
  public var address: String
  /// The pid of its sidecar (`weft proxy`), when added with `--mesh`.
  public var proxyPID: Int32?
}
