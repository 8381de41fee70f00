/// The API version every Weft resource carries.
public let weftAPIVersion = "weft/v1"

/// Name, labels and the bookkeeping the store keeps for a resource.
public struct Metadata: Codable, Sendable, Hashable {
  /// Unique within the kind: lower-case letters, digits, `-` and `.`, at most 63 characters.
  public var name: String
  /// Free-form labels that selectors match.
  public var labels: [String: String]?
  /// The store revision of the last change (read-only; set by the store).
  public var revision: Int64?
  /// The store revision at creation (read-only; set by the store).
  public var createdRevision: Int64?

  /// Creates metadata with a name and labels.
  public init(
    name: String, labels: [String: String]? = nil, revision: Int64? = nil, createdRevision: Int64? = nil
  ) {
    self.name = name
    self.labels = labels
    self.revision = revision
    self.createdRevision = createdRevision
  }
}

/// A resource in the Kubernetes shape: `apiVersion`, `kind`, `metadata`, `spec` and a read-only
/// `status`. The spec and status stay untyped here; ``Resource/decodeSpec(_:)`` gives the typed view.
public struct Resource: Codable, Sendable, Hashable {
  /// Always ``weftAPIVersion``.
  public var apiVersion: String
  /// What the resource is.
  public var kind: ResourceKind
  /// Name and labels.
  public var metadata: Metadata
  /// The desired state.
  public var spec: JSONValue
  /// The observed state, written by the controller and agents only.
  public var status: JSONValue?

  /// Creates a resource.
  public init(kind: ResourceKind, metadata: Metadata, spec: JSONValue, status: JSONValue? = nil) {
    self.apiVersion = weftAPIVersion
    self.kind = kind
    self.metadata = metadata
    self.spec = spec
    self.status = status
  }

  /// Creates a resource from a typed spec.
  public init<S: Encodable>(kind: ResourceKind, name: String, labels: [String: String]? = nil, spec: S) throws
  {
    self.init(kind: kind, metadata: Metadata(name: name, labels: labels), spec: try JSONValue(encoding: spec))
  }

  /// The store key, `kind/name`.
  public var key: ResourceKey { ResourceKey(kind: self.kind, name: self.metadata.name) }

  /// The spec decoded as `T`.
  public func decodeSpec<T: Decodable>(_: T.Type = T.self) throws -> T { try self.spec.decode(T.self) }

  /// The status decoded as `T`, or nil when there is none.
  public func decodeStatus<T: Decodable>(_: T.Type = T.self) throws -> T? { try self.status?.decode(T.self) }
}

/// Identifies a resource: its kind and name.
public struct ResourceKey: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
  /// The kind.
  public var kind: ResourceKind
  /// The name.
  public var name: String

  /// Creates a key.
  public init(kind: ResourceKind, name: String) {
    self.kind = kind
    self.name = name
  }

  /// `Network/blue`.
  public var description: String { "\(self.kind.rawValue)/\(self.name)" }

  /// Orders by kind, then name.
  public static func < (l: ResourceKey, r: ResourceKey) -> Bool {
    (l.kind.rawValue, l.name) < (r.kind.rawValue, r.name)
  }
}
