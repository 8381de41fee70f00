import Foundation
import WeftAgent
import WeftControl

/// Carries out one CNI request against the host agent's local API.
public enum CNIPlugin {
  /// Runs `request` and returns what to print on stdout and the exit status.
  public static func run(_ request: CNIRequest) async -> (output: Data, status: Int32) {
    let version = request.config?.cniVersion ?? "1.0.0"
    do {
      return (try await Self.perform(request), 0)
    } catch let e as CNIError {
      return (e.json(cniVersion: version), 1)
    } catch {
      return (CNIError(CNIError.ioFailure, "\(error)").json(cniVersion: version), 1)
    }
  }

  static func perform(_ r: CNIRequest) async throws -> Data {
    switch r.command {
    case .version:
      let body: [String: Any] = ["cniVersion": "1.0.0", "supportedVersions": CNIRequest.supportedVersions]
      return try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
    case .status:
      let agent = AgentClient(socket: r.config?.agentSocket ?? CNIConfig.defaultAgentSocket)
      let status: AgentAPI.StatusBody
      do {
        status = try agent.call("GET", "/v1/status", body: Optional<GCRequest>.none)
      } catch let e as CNIError {
        throw CNIError(CNIError.notAvailable, "the Weft agent is not available", details: e.description)
      }
      guard status.ready else {
        throw CNIError(CNIError.notAvailable, "the Weft agent has not synced with its controller yet")
      }
      return Data()
    case .add, .del, .check, .gc:
      let config = r.config!
      let agent = AgentClient(socket: config.agentSocket ?? CNIConfig.defaultAgentSocket)
      let network = config.network!
      let attach = AttachRequest(
        workload: CNIRequest.workloadName(containerID: r.containerID ?? ""), netns: r.netns ?? "",
        interface: r.ifname ?? "eth0", network: network,
        labels: ["cni.runtime/network": config.name].merging(
          config.mesh == true ? [AgentAPI.meshLabel: "true"] : [:]
        ) { a, _ in a })
      switch r.command {
      case .add:
        let a: WorkloadAttachment = try agent.call("POST", "/v1/attach", body: attach)
        let v4 = config.cniVersion == "0.4.0" ? "4" : nil
        return CNIResult(
          cniVersion: config.cniVersion,
          interfaces: [.init(name: a.interface, mac: a.mac, mtu: a.mtu, sandbox: r.netns)],
          ips: [.init(version: v4, address: a.address, gateway: a.gateway, interface: 0)],
          routes: [.init(dst: "0.0.0.0/0", gw: a.gateway)],
          dns: .init(nameservers: [a.gateway], search: ["weft"])
        ).json()
      case .del:
        let _: AgentAPI.StatusBody = try agent.call("POST", "/v1/detach", body: attach)
        return Data()
      case .check:
        do {
          let _: AgentAPI.StatusBody = try agent.call("POST", "/v1/check", body: attach)
        } catch let e as CNIError where e.code == CNIError.unknownContainer {
          throw e
        }
        return Data()
      default:
        let keep = (config.validAttachments ?? []).map {
          CNIRequest.workloadName(containerID: $0.containerID)
        }
        let _: AgentAPI.StatusBody = try agent.call(
          "POST", "/v1/gc", body: GCRequest(network: network, keep: keep))
        return Data()
      }
    }
  }
}
