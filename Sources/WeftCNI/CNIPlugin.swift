import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
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
        status = try await agent.call("GET", "/v1/status", body: Optional<GCRequest>.none)
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
          config.mesh == true ? ["weft/mesh": "true"] : [:]
        ) { a, _ in a })
      switch r.command {
      case .add:
        let a: WorkloadAttachment = try await agent.call("POST", "/v1/attach", body: attach)
        let v4 = config.cniVersion == "0.4.0" ? "4" : nil
        return CNIResult(
          cniVersion: config.cniVersion,
          interfaces: [.init(name: a.interface, mac: a.mac, mtu: a.mtu, sandbox: r.netns)],
          ips: [.init(version: v4, address: a.address, gateway: a.gateway, interface: 0)],
          routes: [.init(dst: "0.0.0.0/0", gw: a.gateway)],
          dns: .init(nameservers: nil, search: nil)
        ).json()
      case .del:
        let _: AgentAPI.StatusBody = try await agent.call("POST", "/v1/detach", body: attach)
        return Data()
      case .check:
        do {
          let _: AgentAPI.StatusBody = try await agent.call("POST", "/v1/check", body: attach)
        } catch let e as CNIError where e.code == CNIError.unknownContainer {
          throw e
        }
        return Data()
      default:
        let keep = (config.validAttachments ?? []).map {
          CNIRequest.workloadName(containerID: $0.containerID)
        }
        let _: AgentAPI.StatusBody = try await agent.call(
          "POST", "/v1/gc", body: GCRequest(network: network, keep: keep))
        return Data()
      }
    }
  }
}

/// A client for the agent's local API over its unix socket.
struct AgentClient {
  let socket: String

  /// A client that gives up connecting after two seconds: a dead agent must fail fast.
  static let http: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.timeout = .init(connect: .seconds(2), read: .seconds(30))
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
  }()

  func call<T: Decodable, B: Encodable>(_ method: String, _ path: String, body: B?) async throws -> T {
    let encoded = self.socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? self.socket
    var request = HTTPClientRequest(url: "http+unix://\(encoded)\(path)")
    request.method = HTTPMethod(rawValue: method)
    if let body {
      request.headers.add(name: "Content-Type", value: "application/json")
      request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
    }
    let response: HTTPClientResponse
    do {
      guard FileManager.default.fileExists(atPath: self.socket) else {
        throw CNIError(CNIError.tryAgainLater, "no socket")
      }
      response = try await Self.http.execute(request, timeout: .seconds(30))
    } catch {
      throw CNIError(
        CNIError.tryAgainLater, "cannot reach the Weft agent at \(self.socket)",
        details: "is weft agent running on this host? (\(error))")
    }
    let data = try await response.body.collect(upTo: 1 << 20)
    guard response.status == .ok else {
      let e = (try? JSONDecoder().decode(ErrorBody.self, from: Data(buffer: data)))?.error
      let code: Int
      switch e?.status ?? 500 {
      case 404: code = CNIError.unknownContainer
      case 400: code = CNIError.invalidConfig
      case 503: code = CNIError.tryAgainLater
      default: code = CNIError.ioFailure
      }
      throw CNIError(code, e?.message ?? "the agent answered \(response.status)")
    }
    return try JSONDecoder().decode(T.self, from: Data(buffer: data))
  }
}
