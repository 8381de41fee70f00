import WeftModel

/// What a write requires of the current state, for compare-and-put.
public enum Precondition: Sendable, Hashable {
  /// Write whatever is there.
  case none
  /// Only create: fail if the resource exists.
  case absent
  /// Only if the resource exists at exactly this revision.
  case revision(Int64)
}

/// One change in the store's history.
public struct StoreEvent: Codable, Sendable, Hashable {
  /// What happened.
  public enum Kind: String, Codable, Sendable {
    /// Created or updated.
    case put
    /// Deleted.
    case delete
  }

  /// The store revision of this change.
  public var revision: Int64
  /// Put or delete.
  public var type: Kind
  /// The resource after the change (for a delete: its last state).
  public var resource: Resource

  /// Creates an event.
  public init(revision: Int64, type: Kind, resource: Resource) {
    self.revision = revision
    self.type = type
    self.resource = resource
  }
}

/// Why a store operation failed.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
  /// A stable kind of failure.
  public enum Code: String, Sendable, Hashable {
    /// The precondition did not hold (the resource changed, exists, or is missing).
    case conflict
    /// No such resource.
    case notFound
    /// The requested history is gone; list again and watch from the list's revision.
    case compacted
    /// The backend failed (disk, database).
    case backend
  }

  /// The kind of failure.
  public var code: Code
  /// What failed, for which resource.
  public var message: String

  /// Creates an error.
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// The message.
  public var description: String { self.message }
}

/// A versioned resource store: every change gets the next revision; a watcher can resume from
/// any revision still in the history.
///
/// The embedded SQLite backend (``SQLiteStore``) is the default; the protocol is what an etcd
/// backend implements for several controllers.
public protocol Store: Sendable {
  /// The resource, or nil.
  func get(_ key: ResourceKey) async throws -> Resource?
  /// Every resource of a kind (all kinds when nil), and the revision the list reflects.
  func list(_ kind: ResourceKind?) async throws -> (resources: [Resource], revision: Int64)
  /// Creates or replaces a resource if `precondition` holds; returns it as stored, with its
  /// metadata revisions set.
  func put(_ resource: Resource, if precondition: Precondition) async throws -> Resource
  /// Deletes a resource if `precondition` holds; returns its last state.
  func delete(_ key: ResourceKey, if precondition: Precondition) async throws -> Resource
  /// Every change after `revision`, first from history then live, in revision order. Throws
  /// `compacted` when that history is gone.
  func watch(after revision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error>
  /// The latest revision.
  func currentRevision() async throws -> Int64
}
