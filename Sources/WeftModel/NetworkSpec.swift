import WeftWire

/// An MTU setting: derived from the underlay, or a fixed number of bytes.
public enum MTUSetting: Codable, Sendable, Hashable, CustomStringConvertible {
  /// Underlay MTU minus the VXLAN overhead (50 bytes over IPv4, 70 over IPv6).
  case auto
  /// A fixed MTU.
  case fixed(Int)

  /// Decodes `"auto"` or a number.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if let n = try? c.decode(Int.self) {
      self = .fixed(n)
    } else if let s = try? c.decode(String.self), s == "auto" {
      self = .auto
    } else if let s = try? c.decode(String.self), let n = Int(s) {
      self = .fixed(n)
    } else {
      throw DecodingError.dataCorruptedError(in: c, debugDescription: "mtu must be \"auto\" or a number")
    }
  }

  /// Encodes `"auto"` or the number.
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .auto: try c.encode("auto")
    case .fixed(let n): try c.encode(n)
    }
  }

  /// `auto` or the number.
  public var description: String {
    switch self {
    case .auto: "auto"
    case .fixed(let n): String(n)
    }
  }
}

/// The spec of a `Network`: an overlay address range cut into one subnet per host, and a VNI.
public struct NetworkSpec: Codable, Sendable, Hashable {
  /// The network's IPv4 range, e.g. `100.96.0.0/16`.
  public var cidr: String
  /// The prefix length of each host's subnet lease (default 24).
  public var hostPrefixLength: Int?
  /// The VXLAN network identifier (1-16777215); the controller picks a free one when absent.
  public var vni: Int?
  /// The MTU of the network's devices and workload interfaces (default auto).
  public var mtu: MTUSetting?

  /// The fields a spec may have.
  public static let fields: Set<String> = ["cidr", "hostPrefixLength", "vni", "mtu"]

  /// The default host subnet prefix length.
  public static let defaultHostPrefixLength = 24
  /// The largest VNI (24 bits).
  public static let maxVNI = 0xFF_FFFF

  /// Creates a spec.
  public init(cidr: String, hostPrefixLength: Int? = nil, vni: Int? = nil, mtu: MTUSetting? = nil) {
    self.cidr = cidr
    self.hostPrefixLength = hostPrefixLength
    self.vni = vni
    self.mtu = mtu
  }

  /// The parsed range (valid specs only).
  public var prefix: IPPrefix? { IPPrefix(self.cidr) }

  /// The host subnet length, defaulted.
  public var effectiveHostPrefixLength: Int { self.hostPrefixLength ?? Self.defaultHostPrefixLength }
}

/// A network's status, kept by the controller.
public struct NetworkStatus: Codable, Sendable, Hashable {
  /// The VNI in force (the spec's, or the one the controller allocated).
  public var vni: Int
  /// Host subnet leases: host name to subnet.
  public var leases: [String: String]

  /// Creates a status.
  public init(vni: Int, leases: [String: String] = [:]) {
    self.vni = vni
    self.leases = leases
  }
}
