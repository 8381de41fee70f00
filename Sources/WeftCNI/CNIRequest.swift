import Foundation

/// The network configuration a runtime passes on stdin (the fields Weft reads).
public struct CNIConfig: Codable, Sendable, Equatable {
  /// The configuration's CNI version.
  public var cniVersion: String
  /// The network configuration's name (the runtime's network name).
  public var name: String
  /// The plugin type, `weft-cni`.
  public var type: String?
  /// The Weft network to attach to.
  public var network: String?
  /// The agent's local API socket.
  public var agentSocket: String?
  /// Whether the workload gets a sidecar (used by the mesh).
  public var mesh: Bool?
  /// For GC: the attachments that still exist.
  public var validAttachments: [Attachment]?

  /// An attachment named in a GC request.
  public struct Attachment: Codable, Sendable, Equatable {
    /// The container's ID.
    public var containerID: String
    /// The interface name.
    public var ifname: String
  }

  enum CodingKeys: String, CodingKey {
    case cniVersion, name, type, network, agentSocket, mesh
    case validAttachments = "cni.dev/valid-attachments"
  }

  /// The agent socket when none is configured.
  public static let defaultAgentSocket = "/var/lib/weft/agent/agent.sock"
}

/// One plugin invocation: the command, its environment and its configuration, validated.
public struct CNIRequest: Sendable, Equatable {
  /// ADD, DEL, CHECK, VERSION, STATUS or GC.
  public enum Command: String, Sendable {
    case add = "ADD", del = "DEL", check = "CHECK", version = "VERSION", status = "STATUS", gc = "GC"
  }

  /// The versions this plugin speaks.
  public static let supportedVersions = ["0.4.0", "1.0.0", "1.1.0"]

  /// The command.
  public var command: Command
  /// CNI_CONTAINERID.
  public var containerID: String?
  /// CNI_NETNS.
  public var netns: String?
  /// CNI_IFNAME.
  public var ifname: String?
  /// The configuration (absent for VERSION).
  public var config: CNIConfig?

  /// Reads and checks the environment and stdin the spec defines for each command.
  public static func parse(environment env: [String: String], stdin: Data) throws(CNIError) -> CNIRequest {
    guard let raw = env["CNI_COMMAND"], !raw.isEmpty else {
      throw CNIError(CNIError.invalidEnvironment, "CNI_COMMAND is not set")
    }
    guard let command = Command(rawValue: raw) else {
      throw CNIError(
        CNIError.invalidEnvironment, "unknown CNI_COMMAND '\(raw)'",
        details: "use ADD, DEL, CHECK, VERSION, STATUS or GC")
    }
    var request = CNIRequest(
      command: command, containerID: env["CNI_CONTAINERID"], netns: env["CNI_NETNS"],
      ifname: env["CNI_IFNAME"], config: nil)
    if command == .version { return request }
    let config: CNIConfig
    do {
      config = try JSONDecoder().decode(CNIConfig.self, from: stdin)
    } catch {
      throw CNIError(
        CNIError.decodeFailure, "cannot decode the network configuration on stdin", details: "\(error)")
    }
    guard Self.supportedVersions.contains(config.cniVersion) else {
      throw CNIError(
        CNIError.incompatibleVersion, "cniVersion \(config.cniVersion) is not supported",
        details: "supported: \(Self.supportedVersions.joined(separator: ", "))")
    }
    if command == .add || command == .check || command == .del || command == .gc {
      guard let network = config.network, !network.isEmpty else {
        throw CNIError(
          CNIError.invalidConfig, "the configuration has no 'network' (the Weft network to join)")
      }
      _ = network
    }
    let needs: [(String, String?)]
    switch command {
    case .add, .check:
      needs = [
        ("CNI_CONTAINERID", request.containerID), ("CNI_NETNS", request.netns),
        ("CNI_IFNAME", request.ifname),
      ]
    case .del: needs = [("CNI_CONTAINERID", request.containerID), ("CNI_IFNAME", request.ifname)]
    default: needs = []
    }
    for (name, value) in needs where (value ?? "").isEmpty {
      throw CNIError(CNIError.invalidEnvironment, "\(name) is not set")
    }
    request.config = config
    return request
  }

  /// The Workload name for a container: `c-` and the first 16 characters of its ID, lower-cased
  /// (a valid resource name, unique in practice).
  public static func workloadName(containerID: String) -> String {
    let safe = containerID.lowercased().filter { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
    return "c-" + String(safe.prefix(16))
  }
}
