/// A workload identity in SPIFFE form: `spiffe://<trust domain>/ns/<namespace>/sa/<account>`.
/// The trust domain names the mesh; the namespace and account name the workload's group and
/// its role (a workload label or, failing that, the service it serves).
public struct SPIFFEID: Sendable, Hashable, Codable, CustomStringConvertible {
  /// The mesh's trust domain, such as `weft.local`.
  public var trustDomain: String
  /// The namespace.
  public var namespace: String
  /// The service account.
  public var serviceAccount: String

  /// An identity from its parts; nil when a part has characters SPIFFE does not allow.
  public init?(trustDomain: String, namespace: String, serviceAccount: String) {
    guard Self.isTrustDomain(trustDomain), Self.isSegment(namespace), Self.isSegment(serviceAccount) else {
      return nil
    }
    self.trustDomain = trustDomain
    self.namespace = namespace
    self.serviceAccount = serviceAccount
  }

  /// Parses `spiffe://TD/ns/NS/sa/SA`; nil for anything else.
  public init?(uri: String) {
    let prefix = "spiffe://"
    guard uri.hasPrefix(prefix) else { return nil }
    let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 5, parts[1] == "ns", parts[3] == "sa" else { return nil }
    self.init(trustDomain: String(parts[0]), namespace: String(parts[2]), serviceAccount: String(parts[4]))
  }

  /// The URI that goes into a certificate's subject alternative name.
  public var uri: String { "spiffe://\(self.trustDomain)/ns/\(self.namespace)/sa/\(self.serviceAccount)" }

  /// The URI.
  public var description: String { self.uri }

  /// Lower-case letters, digits, dots, dashes and underscores (SPIFFE's trust domain rule).
  public static func isTrustDomain(_ text: String) -> Bool {
    !text.isEmpty && text.count <= 255
      && text.utf8.allSatisfy { c in
        (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x2D || c == 0x5F
      }
  }

  /// Letters, digits, dots, dashes and underscores, not `.` or `..` (SPIFFE's path rule).
  static func isSegment(_ text: String) -> Bool {
    !text.isEmpty && text != "." && text != ".." && text.count <= 253
      && text.utf8.allSatisfy { c in
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x2E
          || c == 0x2D || c == 0x5F
      }
  }
}
