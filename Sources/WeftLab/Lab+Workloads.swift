import Foundation
import WeftAgent
import WeftClient
import WeftDatapath
import WeftLinux
import WeftModel
import WeftWire

extension Lab {
  /// Adds workload `workload` to lab `name`: a namespace `weft-NAME-wl.WORKLOAD` attached to
  /// `network` on `host` through the shared attach path (veth into the network's bridge, address
  /// from the host agent's IPAM, default route, MTU), registered as a Workload resource. With
  /// `mesh`, a sidecar (`weft proxy`) starts in the namespace, fed by the host's agent; the call
  /// returns once it intercepts.
  public static func addWorkload(
    lab name: String, workload: String, host hostName: String, network: String,
    labels: [String: String] = [:],
    mesh: Bool = false
  ) async throws -> LabWorkload {
    try Self.validate(name: name)
    try Self.requirePrivileges()
    guard (1...30).contains(workload.count),
      workload.allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" })
    else {
      throw LabError(
        .badInput, "workload name '\(workload)' is not valid: use 1-30 lower-case letters, digits or dashes")
    }
    guard var state = Self.load(name) else {
      throw LabError(.notFound, "no lab '\(name)' (see: weft lab list)")
    }
    guard let host = state.hosts.first(where: { $0.name == hostName }) else {
      throw LabError(.badInput, "lab '\(name)' has no host '\(hostName)'")
    }
    guard state.namespace(for: workload) == nil else {
      throw LabError(.exists, "lab '\(name)' already has a workload or host called '\(workload)'")
    }
    let client = try Self.client(name)
    guard let netResource = try await client.get(ResourceKey(kind: .network, name: network)) else {
      throw LabError(.badInput, "no network '\(network)' (apply one first: weft lab apply \(name) -f FILE)")
    }
    let hosts = try await client.list(.host).items
    let hostNS = NetworkNamespace(host.namespace)
    let netlink = try hostNS.openNetlink()
    let (_, underlayLink) = try Underlay.find(
      IPAddress(host.underlay.split(separator: "/")[0]), netlink: netlink)
    let desired = DesiredStateBuilder.build(
      host: hostName, underlay: IPAddress(host.underlay.split(separator: "/")[0])!,
      underlayDevice: underlayLink.name,
      underlayMTU: underlayLink.mtu, networks: [netResource], hosts: hosts)
    guard let dn = desired.networks.first else {
      throw LabError(.system, "host \(hostName) has no lease on network \(network) yet")
    }
    // The agent reconciles asynchronously: wait for the network's bridge on the host.
    _ = try await Self.waitFor("network \(network)'s bridge on \(hostName)") {
      (try? netlink.link(named: dn.bridgeName)) ?? nil
    }
    let namespace = try NetworkNamespace.create("weft-\(name)-wl.\(workload)")
    let ipam = IPAM(path: "\(Self.directory(name))/\(hostName)/ipam.json")
    do {
      let attached = try WorkloadAttach.attach(
        workload: workload, namespace: namespace, network: dn, host: netlink, ipam: ipam)
      // A meshed workload says so: callers' sidecars then speak mutual TLS to its sidecar.
      let labels = mesh ? labels.merging([MeshIdentity.meshLabel: "true"]) { a, _ in a } : labels
      let resource = try Resource(
        kind: .workload, name: workload, labels: labels.isEmpty ? nil : labels,
        spec: WorkloadSpec(
          network: network, host: hostName, address: String(attached.address.split(separator: "/")[0]),
          mac: attached.mac))
      _ = try await client.apply([resource])
      var entry = LabWorkload(
        name: workload, host: hostName, network: network, namespace: namespace.name, address: attached.address
      )
      if mesh {
        entry.proxyPID = try await Self.startProxy(
          lab: name, workload: workload, host: hostName, namespace: namespace)
      }
      state = Self.load(name) ?? state
      state.workloads = (state.workloads ?? []) + [entry]
      try Self.save(state)
      return entry
    } catch {
      try? WorkloadAttach.detach(workload: workload, network: network, host: netlink, ipam: ipam)
      try? namespace.delete()
      throw error
    }
  }

  /// How long a lab sidecar drains when stopped, and how long the lab waits before killing it.
  static let proxyDrainSeconds = 2
  static let proxyStopGrace = Duration.seconds(4)

  /// Starts a workload's sidecar and waits until it says it is ready (its rules are in).
  static func startProxy(lab name: String, workload: String, host: String, namespace: NetworkNamespace)
    async throws
    -> Int32
  {
    let dir = Self.directory(name)
    let log = "\(dir)/\(workload)-proxy.log"
    let executable = Self.load(name)?.control?.executable ?? Self.executable
    do {
      return try await Sidecar.start(
        executable: executable, agentSocket: "\(dir)/\(host)/agent.sock", workload: workload,
        namespace: namespace,
        log: log, drainSeconds: Self.proxyDrainSeconds)
    } catch let error as Sidecar.StartError {
      throw LabError(.system, error.description)
    }
  }

  /// Removes a workload: its resource, its attachment and address, and its namespace.
  public static func removeWorkload(lab name: String, workload: String) async throws {
    try Self.validate(name: name)
    try Self.requirePrivileges()
    guard var state = Self.load(name) else {
      throw LabError(.notFound, "no lab '\(name)' (see: weft lab list)")
    }
    guard let w = state.workloads?.first(where: { $0.name == workload }),
      let host = state.hosts.first(where: { $0.name == w.host })
    else {
      throw LabError(.notFound, "lab '\(name)' has no workload '\(workload)'")
    }
    if let pid = w.proxyPID, Self.isOurs(pid, lab: name) { Spawn.stop(pid, grace: Self.proxyStopGrace) }
    let client = try Self.client(name)
    _ = try? await client.delete(ResourceKey(kind: .workload, name: workload))
    let netlink = try NetworkNamespace(host.namespace).openNetlink()
    try WorkloadAttach.detach(
      workload: workload, network: w.network, host: netlink,
      ipam: IPAM(path: "\(Self.directory(name))/\(w.host)/ipam.json"))
    try? NetworkNamespace(w.namespace).delete()
    state.workloads?.removeAll { $0.name == workload }
    try Self.save(state)
  }
}
