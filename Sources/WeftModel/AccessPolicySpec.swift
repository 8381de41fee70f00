/// The spec of an `AccessPolicy`: which callers may reach a service (or every service of a
/// namespace, or the whole mesh), enforced by the sidecars of the service's endpoints. A DENY
/// policy that matches refuses; a service with any ALLOW policy in scope refuses what none of
/// them allows; a mesh-wide `defaultAction: deny` refuses what no policy allows.
public struct AccessPolicySpec: Codable, Sendable, Hashable {
  /// ALLOW or DENY.
  public enum Action: String, Codable, Sendable, Hashable {
    /// Let matching requests through (and, in scope, only them).
    case allow
    /// Refuse matching requests.
    case deny
  }

  /// The service it guards (exactly one of `service`, `namespace`, `mesh`).
  public var service: String?
  /// Every service of this namespace (its network).
  public var namespace: String?
  /// Every service of the mesh.
  public var mesh: Bool?
  /// What a match does (required unless the policy only sets `defaultAction`).
  public var action: Action?
  /// Matches: a request or connection matched by any rule is matched by the policy.
  public var rules: [AccessRule]?
  /// With `mesh: true`: what happens to a request no policy decides (default allow).
  public var defaultAction: Action?

  /// The fields a spec may have.
  public static let fields: Set<String> = [
    "service", "namespace", "mesh", "action", "rules", "defaultAction",
  ]

  /// Creates a spec.
  public init(
    service: String? = nil, namespace: String? = nil, mesh: Bool? = nil, action: Action? = nil,
    rules: [AccessRule]? = nil, defaultAction: Action? = nil
  ) {
    self.service = service
    self.namespace = namespace
    self.mesh = mesh
    self.action = action
    self.rules = rules
    self.defaultAction = defaultAction
  }

  /// What is wrong, as (field, problem), or nil.
  public var problem: (field: String, message: String)? {
    let scopes = [self.service != nil, self.namespace != nil, self.mesh == true].filter { $0 }.count
    if scopes != 1 { return ("spec", "give exactly one of service, namespace or mesh: true") }
    if self.defaultAction != nil && self.mesh != true {
      return ("spec.defaultAction", "applies to a mesh-wide policy (mesh: true) only")
    }
    if self.action == nil && self.defaultAction == nil {
      return ("spec.action", "must be allow or deny")
    }
    if self.action != nil && (self.rules ?? []).isEmpty {
      return ("spec.rules", "must list at least one rule (a rule with no from and no to matches everything)")
    }
    for (i, rule) in (self.rules ?? []).enumerated() {
      for (j, id) in (rule.from?.identities ?? []).enumerated() where !id.hasPrefix("spiffe://") {
        return (
          "spec.rules[\(i)].from.identities[\(j)]",
          "'\(id)' is not a spiffe:// identity (a trailing * matches a prefix)"
        )
      }
      for (j, path) in (rule.to?.paths ?? []).enumerated() where !path.hasPrefix("/") && path != "*" {
        return ("spec.rules[\(i)].to.paths[\(j)]", "'\(path)' must start with / (or be *)")
      }
      for (j, method) in (rule.to?.methods ?? []).enumerated()
      where method.isEmpty || !method.allSatisfy({ $0.isASCII && ($0.isUppercase || $0 == "-") }) {
        return ("spec.rules[\(i)].to.methods[\(j)]", "'\(method)' is not an HTTP method such as GET")
      }
    }
    return nil
  }
}

/// One rule: who calls (`from`) and what they ask (`to`); both must match, an absent part
/// matches anything.
public struct AccessRule: Codable, Sendable, Hashable {
  /// The callers.
  public var from: AccessSource?
  /// The requests (HTTP only; a TCP connection has none to match).
  public var to: AccessOperation?

  /// The fields a rule may have.
  public static let fields: Set<String> = ["from", "to"]

  /// Creates a rule.
  public init(from: AccessSource? = nil, to: AccessOperation? = nil) {
    self.from = from
    self.to = to
  }
}

/// Callers by identity: each list given must contain the caller (one entry of it matches).
public struct AccessSource: Codable, Sendable, Hashable {
  /// SPIFFE URIs; one ending in `*` matches every identity that starts with the rest.
  public var identities: [String]?
  /// Namespaces (the `ns` part of the caller's identity).
  public var namespaces: [String]?

  /// The fields a source may have.
  public static let fields: Set<String> = ["identities", "namespaces"]

  /// Creates a source.
  public init(identities: [String]? = nil, namespaces: [String]? = nil) {
    self.identities = identities
    self.namespaces = namespaces
  }
}

/// HTTP requests: each field given must match (one entry of a list).
public struct AccessOperation: Codable, Sendable, Hashable {
  /// Methods, such as GET.
  public var methods: [String]?
  /// Paths (query left out): exact, or globs where `*` matches any run of characters and `?` one
  /// (so `/api/*` is a prefix).
  public var paths: [String]?
  /// Header values that must be exact (names without case).
  public var headers: [String: String]?

  /// The fields an operation may have.
  public static let fields: Set<String> = ["methods", "paths", "headers"]

  /// Creates an operation.
  public init(methods: [String]? = nil, paths: [String]? = nil, headers: [String: String]? = nil) {
    self.methods = methods
    self.paths = paths
    self.headers = headers
  }
}
