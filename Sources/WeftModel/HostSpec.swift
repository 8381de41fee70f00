/// The spec of a `Host`, written by its agent when it joins.
public struct HostSpec: Codable, Sendable, Hashable {
  /// The host's underlay address (the VTEP's outer source address).
  public var underlay: String
  /// The datapath the agent runs: `kernel` or `userspace`.
  public var datapath: String?
  /// The underlay interface MTU the agent measured (for MTU auto).
  public var underlayMTU: Int?

  /// The fields a spec may have.
  public static let fields: Set<String> = ["underlay", "datapath", "underlayMTU"]

  /// Creates a spec.
  public init(underlay: String, datapath: String? = nil, underlayMTU: Int? = nil) {
    self.underlay = underlay
    self.datapath = datapath
    self.underlayMTU = underlayMTU
  }
}

/// One network as seen from one host: the host's subnet lease and its VTEP MAC there.
public struct HostNetwork: Codable, Sendable, Hashable {
  /// The subnet leased to the host, e.g. `100.96.3.0/24`.
  public var subnet: String
  /// The MAC of the host's VTEP on that network (stable per host and network).
  public var vtepMAC: String

  /// Creates an entry.
  public init(subnet: String, vtepMAC: String) {
    self.subnet = subnet
    self.vtepMAC = vtepMAC
  }
}

/// A host's status: its leases and liveness.
public struct HostStatus: Codable, Sendable, Hashable {
  /// Per network name: the lease and VTEP MAC.
  public var networks: [String: HostNetwork]
  /// When the agent last reported (seconds since 1970).
  public var heartbeat: Double?
  /// `Ready` while heartbeats arrive, `Lost` after the lease-expiry time without one.
  public var phase: String?

  /// Creates a status.
  public init(networks: [String: HostNetwork] = [:], heartbeat: Double? = nil, phase: String? = nil) {
    self.networks = networks
    self.heartbeat = heartbeat
    self.phase = phase
  }
}
