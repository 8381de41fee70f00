import WeftIdentity
import WeftModel

/// An access policy as a sidecar holds it.
public struct ProxyAccessPolicy: Codable, Sendable, Hashable {
  /// The policy's name.
  public var name: String
  /// What it says.
  public var spec: AccessPolicySpec

  /// Creates one.
  public init(name: String, spec: AccessPolicySpec) {
    self.name = name
    self.spec = spec
  }
}

/// What the policies say of one request or connection, and why.
public struct AccessDecision: Codable, Sendable, Hashable {
  /// Whether it may go on.
  public var allowed: Bool
  /// The policy that decided (nil when none did: the mesh's default).
  public var policy: String?
  /// The rule of that policy that matched (its index).
  public var rule: Int?
  /// The decision in a sentence.
  public var reason: String
}

/// Decides access, sans-IO. For a request to a service: a matching DENY policy in scope
/// refuses; otherwise, when ALLOW policies are in scope, one of them must match; otherwise the
/// mesh's `defaultAction` decides (allow unless a mesh-wide policy says deny). A policy is in
/// scope when it names the service, the service's namespace, or the mesh. A caller without a
/// verified identity (plaintext) matches only rules without `from`. A TCP connection has no
/// request: an ALLOW rule with `to` never matches it, a DENY rule with `to` always does (an
/// HTTP condition cannot be checked, so the refusal errs on the safe side).
public struct AccessPolicyEngine: Sendable {
  private let policies: [ProxyAccessPolicy]

  /// An engine over `policies` (sorted by name, so decisions do not depend on their order).
  public init(_ policies: [ProxyAccessPolicy]) {
    self.policies = policies.sorted { $0.name < $1.name }
  }

  /// True when there is nothing to decide (every request is allowed).
  public var isEmpty: Bool { self.policies.isEmpty }

  /// The decision for a caller `peer` (nil: unauthenticated) reaching `service` of `namespace`
  /// with `request` (nil: a TCP connection).
  public func decide(service: String, namespace: String, peer: SPIFFEID?, request: RequestView?)
    -> AccessDecision
  {
    let inScope = self.policies.filter { p in
      p.spec.service == service || p.spec.namespace == namespace || p.spec.mesh == true
    }
    let caller = peer?.uri ?? "an unauthenticated caller"
    for policy in inScope where policy.spec.action == .deny {
      if let rule = Self.firstMatch(policy, peer: peer, request: request, deny: true) {
        return AccessDecision(
          allowed: false, policy: policy.name, rule: rule,
          reason: "DENY policy '\(policy.name)' rule \(rule) matches \(caller)")
      }
    }
    let allows = inScope.filter { $0.spec.action == .allow }
    for policy in allows {
      if let rule = Self.firstMatch(policy, peer: peer, request: request, deny: false) {
        return AccessDecision(
          allowed: true, policy: policy.name, rule: rule,
          reason: "ALLOW policy '\(policy.name)' rule \(rule) matches \(caller)")
      }
    }
    if !allows.isEmpty {
      return AccessDecision(
        allowed: false, policy: nil, rule: nil,
        reason:
          "ALLOW policies \(allows.map { "'\($0.name)'" }.joined(separator: ", ")) guard \(service) and none matches \(caller)"
      )
    }
    if let strict = inScope.first(where: { $0.spec.mesh == true && $0.spec.defaultAction == .deny }) {
      return AccessDecision(
        allowed: false, policy: strict.name, rule: nil,
        reason: "no policy allows \(caller) and '\(strict.name)' makes the mesh deny by default")
    }
    return AccessDecision(allowed: true, policy: nil, rule: nil, reason: "no policy applies to \(service)")
  }

  private static func firstMatch(
    _ policy: ProxyAccessPolicy, peer: SPIFFEID?, request: RequestView?, deny: Bool
  )
    -> Int?
  {
    (policy.spec.rules ?? []).indices.first { i in
      let rule = policy.spec.rules![i]
      return Self.matches(rule.from, peer) && Self.matches(rule.to, request, deny: deny)
    }
  }

  private static func matches(_ source: AccessSource?, _ peer: SPIFFEID?) -> Bool {
    guard let source else { return true }
    guard let peer else { return false }
    if let identities = source.identities,
      !identities.contains(where: { pattern in
        pattern.hasSuffix("*") ? peer.uri.hasPrefix(String(pattern.dropLast())) : peer.uri == pattern
      })
    {
      return false
    }
    if let namespaces = source.namespaces, !namespaces.contains(peer.namespace) { return false }
    return true
  }

  private static func matches(_ operation: AccessOperation?, _ request: RequestView?, deny: Bool) -> Bool {
    guard let operation else { return true }
    guard let request else { return deny }
    if let methods = operation.methods, !methods.contains(request.method) { return false }
    if let paths = operation.paths {
      let path = String(
        request.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
      if !paths.contains(where: { Glob.matches($0, path) }) { return false }
    }
    for (name, value) in operation.headers ?? [:] where request.header(name.lowercased()) != value {
      return false
    }
    return true
  }
}

/// Glob matching for paths: `*` matches any run of characters (slashes too), `?` any one.
enum Glob {
  static func matches(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.utf8)
    let t = Array(text.utf8)
    var (i, j) = (0, 0)
    var star: Int?
    var mark = 0
    while j < t.count {
      if i < p.count, p[i] == UInt8(ascii: "?") || p[i] == t[j] {
        i += 1
        j += 1
      } else if i < p.count, p[i] == UInt8(ascii: "*") {
        star = i
        mark = j
        i += 1
      } else if let s = star {
        i = s + 1
        mark += 1
        j = mark
      } else {
        return false
      }
    }
    while i < p.count, p[i] == UInt8(ascii: "*") { i += 1 }
    return i == p.count
  }
}
