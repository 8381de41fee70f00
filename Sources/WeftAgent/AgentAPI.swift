import Foundation
import Hummingbird
import NIOCore
import WeftClient
import WeftControl
import WeftDatapath
import WeftLinux
import WeftModel

/// What a runtime (through the CNI plugin) asks of the agent.
public struct AttachRequest: Codable, Sendable {
  /// The workload's name (the plugin derives it from the container ID).
  public var workload: String
  /// The path of the workload's network namespace file.
  public var netns: String
  /// The interface to create inside it.
  public var interface: String
  /// The Weft network.
  public var network: String
  /// Labels for the Workload resource.
  public var labels: [String: String]?

  /// Creates a request.
  public init(
    workload: String, netns: String, interface: String, network: String, labels: [String: String]? = nil
  ) {
    self.workload = workload
    self.netns = netns
    self.interface = interface
    self.network = network
    self.labels = labels
  }
}

/// Addresses the agent still holds, for garbage collection: everything not listed is released.
public struct GCRequest: Codable, Sendable {
  /// The Weft network.
  public var network: String
  /// Workloads that still exist.
  public var keep: [String]

  /// Creates a request.
  public init(network: String, keep: [String]) {
    self.network = network
    self.keep = keep
  }
}

/// The agent's local API, served on a unix socket for the CNI plugin: attach, detach, check,
/// garbage-collect and status. Attach goes through the same path as the lab (``WorkloadAttach``)
/// and registers a Workload resource; a failure undoes everything.
public enum AgentAPI {
  /// The workload label the CNI plugin sets for `mesh: true`: the agent starts a sidecar.
  public static let meshLabel = MeshIdentity.meshLabel
  /// Builds the router. `network` gives the desired state of a network on this host (nil when the
  /// host has no lease there yet).
  public static func router(
    agent: Agent, netlink: Netlink, ipam: IPAM, client: ControlClient, hostName: String,
    datapath: String = "kernel", sidecars: SidecarRegistry? = nil,
    counters: @escaping @Sendable () -> VTEPCounters? = { nil }
  ) -> Router<BasicRequestContext> {
    let router = Router()
    let attachLock = AsyncLock()
    router.get("/v1/counters") { _, _ in
      await ControlServer.answer { CountersBody(host: hostName, datapath: datapath, counters: counters()) }
    }
    router.get("/v1/proxy/snapshot") { request, _ in
      await ControlServer.answer {
        guard let workload = request.uri.queryParameters.get("workload") else {
          throw ControlError.invalid("query parameter 'workload' is required")
        }
        let after = request.uri.queryParameters.get("after", as: Int.self)
        return try await agent.proxySnapshot(for: workload, after: after)
      }
    }
    router.get("/v1/proxy/identity") { request, _ in
      await ControlServer.answer {
        guard let workload = request.uri.queryParameters.get("workload") else {
          throw ControlError.invalid("query parameter 'workload' is required")
        }
        guard await agent.isLocal(workload) else {
          throw ControlError.notFound("workload/\(workload) does not run on this host")
        }
        return try await agent.certificates.credentials(for: workload)
      }
    }
    router.get("/v1/status") { _, _ in
      await ControlServer.answer {
        let state = await agent.desiredState()
        return StatusBody(ready: await agent.isReady, networks: state.networks.map(\.name))
      }
    }
    router.post("/v1/attach") { request, _ in
      await ControlServer.answer {
        let body: AttachRequest = try await Self.decode(request)
        return try await attachLock.run {
          let network = try await Self.network(body.network, agent: agent)
          let ns = NetworkNamespace(path: body.netns)
          guard FileManager.default.fileExists(atPath: body.netns) else {
            throw ControlError.invalid("network namespace \(body.netns) does not exist")
          }
          let attached = try WorkloadAttach.attach(
            workload: body.workload, namespace: ns, interface: body.interface, network: network,
            host: netlink,
            ipam: ipam)
          do {
            let resource = try Resource(
              kind: .workload, name: body.workload, labels: body.labels,
              spec: WorkloadSpec(
                network: body.network, host: hostName,
                address: String(attached.address.split(separator: "/")[0]), mac: attached.mac))
            _ = try await client.apply([resource])
          } catch {
            try? WorkloadAttach.detach(
              workload: body.workload, network: body.network, host: netlink, ipam: ipam)
            throw ControlError(
              status: 503, code: "unavailable", message: "registering \(body.workload) failed: \(error)")
          }
          // A meshed workload gets its sidecar before the runtime starts its process, so none
          // of its traffic goes around the mesh.
          if body.labels?[Self.meshLabel] == "true", let sidecars, sidecars.pid(of: body.workload) == nil {
            do {
              _ = try await sidecars.start(workload: body.workload, netns: body.netns)
            } catch {
              _ = try? await client.delete(ResourceKey(kind: .workload, name: body.workload))
              try? WorkloadAttach.detach(
                workload: body.workload, network: body.network, host: netlink, ipam: ipam)
              throw ControlError(status: 503, code: "unavailable", message: "\(error)")
            }
          }
          return attached
        }
      }
    }
    router.post("/v1/detach") { request, _ in
      await ControlServer.answer {
        let body: AttachRequest = try await Self.decode(request)
        try await attachLock.run {
          sidecars?.stop(workload: body.workload)
          try WorkloadAttach.detach(workload: body.workload, network: body.network, host: netlink, ipam: ipam)
          _ = try? await client.delete(ResourceKey(kind: .workload, name: body.workload))
        }
        return StatusBody(ready: true, networks: [])
      }
    }
    router.post("/v1/check") { request, _ in
      await ControlServer.answer {
        let body: AttachRequest = try await Self.decode(request)
        let hostSide = WorkloadAttach.hostInterfaceName(workload: body.workload, network: body.network)
        guard try netlink.link(named: hostSide) != nil else {
          throw ControlError.notFound("\(body.workload): host interface \(hostSide) is missing")
        }
        let inside = try NetworkNamespace(path: body.netns).openNetlink()
        guard try inside.link(named: body.interface) != nil else {
          throw ControlError.notFound(
            "\(body.workload): interface \(body.interface) is missing in \(body.netns)")
        }
        let held = try ipam.table()[body.network]?.first { $0.value == body.workload }?.key
        let addresses = try inside.addresses(of: body.interface).map { $0.prefix.address.description }
        guard let held, addresses.contains(held) else {
          throw ControlError.notFound(
            "\(body.workload): address \(held ?? "none") is missing on \(body.interface)")
        }
        return StatusBody(ready: true, networks: [body.network])
      }
    }
    router.post("/v1/gc") { request, _ in
      await ControlServer.answer {
        let body: GCRequest = try await Self.decode(request)
        let keep = Set(body.keep)
        let released = try await attachLock.run {
          var released: [String] = []
          for workload in (try ipam.table()[body.network] ?? [:]).values where !keep.contains(workload) {
            sidecars?.stop(workload: workload)
            try WorkloadAttach.detach(workload: workload, network: body.network, host: netlink, ipam: ipam)
            _ = try? await client.delete(ResourceKey(kind: .workload, name: workload))
            released.append(workload)
          }
          return released
        }
        return StatusBody(ready: true, networks: released.sorted())
      }
    }
    return router
  }

  private static func network(_ name: String, agent: Agent) async throws -> DesiredNetwork {
    guard let n = await agent.desiredState().networks.first(where: { $0.name == name }) else {
      throw ControlError.invalid(
        "this host has no lease on network '\(name)' (unknown network, or not yet synced)")
    }
    return n
  }

  private static func decode<T: Decodable>(_ request: Request) async throws -> T {
    let body = try await request.body.collect(upTo: 1 << 20)
    do {
      return try JSONDecoder().decode(T.self, from: Data(buffer: body))
    } catch {
      throw ControlError.invalid("request body: \(Validation.describe(error))")
    }
  }

  /// The answer to counters: the userspace datapath's counters (none for the kernel datapath,
  /// whose counters are the kernel's own: `ip -s link`).
  public struct CountersBody: Codable, Sendable {
    /// This host.
    public var host: String
    /// The datapath it runs.
    public var datapath: String
    /// Per network, per peer, drops by reason.
    public var counters: VTEPCounters?
  }

  /// The answer to status, detach and gc.
  public struct StatusBody: Codable, Sendable {
    /// Whether the agent has synced with the controller.
    public var ready: Bool
    /// Network names (status) or released workloads (gc).
    public var networks: [String]
  }
}
