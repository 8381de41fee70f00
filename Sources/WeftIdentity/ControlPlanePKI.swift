import FoundationEssentials
import Glibc
import SwiftASN1
import X509

/// Who a control-plane certificate names, as a URI in its subject alternative names:
/// `spiffe://TD/weft/controller`, `spiffe://TD/weft/host/NAME` or `spiffe://TD/weft/user/NAME`.
/// These never parse as workload identities (``SPIFFEID``), so a sidecar refuses them.
public enum ControlSubject: Hashable, Sendable, CustomStringConvertible {
  /// The controller's server certificate.
  case controller
  /// A host agent's client certificate.
  case host(String)
  /// An operator's client certificate.
  case user(String)

  /// `controller`, `host/NAME` or `user/NAME`.
  public var description: String {
    switch self {
    case .controller: "controller"
    case .host(let name): "host/\(name)"
    case .user(let name): "user/\(name)"
    }
  }

  /// The URI in trust domain `trustDomain`.
  public func uri(trustDomain: String) -> String { "spiffe://\(trustDomain)/weft/\(self)" }

  /// Parses a URI of trust domain `trustDomain`; nil for anything else.
  public init?(uri: String, trustDomain: String) {
    let prefix = "spiffe://\(trustDomain)/weft/"
    guard uri.hasPrefix(prefix) else { return nil }
    let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
    switch (parts.count, parts.first) {
    case (1, "controller"): self = .controller
    case (2, "host") where SPIFFEID.isSegment(String(parts[1])): self = .host(String(parts[1]))
    case (2, "user") where SPIFFEID.isSegment(String(parts[1])): self = .user(String(parts[1]))
    default: return nil
    }
  }

  /// The one control subject a certificate names, or nil.
  public init?(certificate: Certificate, trustDomain: String) {
    let names = (try? certificate.extensions.subjectAlternativeNames).map { Array($0) } ?? []
    let subjects = names.compactMap { name -> ControlSubject? in
      if case .uniformResourceIdentifier(let uri) = name {
        return ControlSubject(uri: uri, trustDomain: trustDomain)
      }
      return nil
    }
    guard subjects.count == 1 else { return nil }
    self = subjects[0]
  }
}

/// The control plane's own CA, apart from the mesh's: it signs the controller's server
/// certificate and the client certificates of hosts and operators, and nothing else. Keeping it
/// apart means no workload certificate can ever speak to the controller, and no host
/// certificate can ever pass as a workload.
public struct ControlPlanePKI: Sendable {
  /// The CA.
  public let authority: CertificateAuthority

  /// Wraps a CA.
  public init(authority: CertificateAuthority) { self.authority = authority }

  /// A fresh key and a server certificate for the controller naming `names` (DNS names or IP
  /// addresses) and its control subject; server authentication only.
  public func serverCredentials(
    names: [String], now: Date = Date(), lifetime: TimeInterval = 365 * 86_400
  ) throws -> WorkloadCredentials {
    let (key, request) = try WorkloadCredentials.request(for: "weft-controller")
    var sans: [GeneralName] = [
      .uniformResourceIdentifier(ControlSubject.controller.uri(trustDomain: self.authority.trustDomain))
    ]
    for name in Set(names).sorted() {
      if let bytes = Self.addressBytes(name) {
        sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
      } else {
        sans.append(.dnsName(name))
      }
    }
    let issued = try self.authority.issue(
      request, names: sans, usages: [.serverAuth], what: "the controller", now: now, lifetime: lifetime)
    return try WorkloadCredentials(key: key, chain: issued.chain)
  }

  /// Signs a host's or an operator's request: a client certificate naming `subject` only.
  public func clientCertificate(
    _ request: CertificateSigningRequest, for subject: ControlSubject, now: Date = Date(),
    lifetime: TimeInterval
  ) throws -> IssuedCertificate {
    try self.authority.issue(
      request, names: [.uniformResourceIdentifier(subject.uri(trustDomain: self.authority.trustDomain))],
      usages: [.clientAuth], what: subject.description, now: now, lifetime: lifetime)
  }

  /// The 4 or 16 bytes of an IP address literal, or nil for a name.
  static func addressBytes(_ text: String) -> [UInt8]? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
    return nil
  }
}

extension Certificate.SerialNumber {
  /// The serial number in lower-case hex, as the controller records it.
  public var hex: String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(self.bytes.count * 2)
    for byte in self.bytes {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}
