import Foundation

/// The result of ADD, shaped as the spec says for 1.0.0 (and 0.4.0, which adds `version` to IPs).
public struct CNIResult: Codable, Sendable, Equatable {
  /// An interface the plugin made.
  public struct Interface: Codable, Sendable, Equatable {
    /// Its name.
    public var name: String
    /// Its MAC.
    public var mac: String?
    /// Its MTU.
    public var mtu: UInt32?
    /// The namespace path, for interfaces inside the container.
    public var sandbox: String?
  }

  /// An address.
  public struct IP: Codable, Sendable, Equatable {
    /// `4` (0.4.0 only).
    public var version: String?
    /// Address with prefix length.
    public var address: String
    /// The gateway.
    public var gateway: String?
    /// Index into `interfaces`.
    public var interface: Int?
  }

  /// A route.
  public struct RouteEntry: Codable, Sendable, Equatable {
    /// Destination prefix.
    public var dst: String
    /// Next hop.
    public var gw: String?
  }

  /// DNS settings.
  public struct DNS: Codable, Sendable, Equatable {
    /// Name servers.
    public var nameservers: [String]?
    /// Search domains.
    public var search: [String]?
  }

  /// The version of the result.
  public var cniVersion: String
  /// Interfaces made.
  public var interfaces: [Interface]
  /// Addresses given.
  public var ips: [IP]
  /// Routes installed.
  public var routes: [RouteEntry]
  /// DNS settings.
  public var dns: DNS

  /// Encodes the result as the spec's JSON.
  public func json() -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    return (try? encoder.encode(self)) ?? Data()
  }
}

extension CNIError {
  /// The spec's error object for `version`.
  public func json(cniVersion: String) -> Data {
    struct Body: Encodable {
      var cniVersion: String
      var code: Int
      var msg: String
      var details: String?
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    return
      (try? encoder.encode(
        Body(cniVersion: cniVersion, code: self.code, msg: self.msg, details: self.details))) ?? Data()
  }
}
