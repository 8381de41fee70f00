import Foundation
import GRDB
import Synchronization
import WeftModel

/// The embedded store: one SQLite database in WAL mode. Each write is one transaction that bumps
/// the revision, writes the resource and appends the event; history is kept for
/// ``historyLimit`` revisions for watchers to resume from.
public final class SQLiteStore: Store {
  /// How many past revisions watchers can resume from.
  public let historyLimit: Int64
  private let pool: DatabasePool
  private let watchers = Mutex<[UInt64: AsyncThrowingStream<StoreEvent, any Error>.Continuation]>([:])
  private let nextWatcher = Atomic<UInt64>(0)

  /// Opens (creating if needed) the database at `path`.
  public init(path: String, historyLimit: Int64 = 10_000) throws {
    var config = Configuration()
    config.busyMode = .timeout(5)
    do {
      self.pool = try DatabasePool(path: path, configuration: config)
    } catch {
      throw StoreError(.backend, "open store \(path): \(error)")
    }
    self.historyLimit = historyLimit
    try self.pool.write { db in
      try db.execute(
        sql: """
          CREATE TABLE IF NOT EXISTS resources (
            kind TEXT NOT NULL, name TEXT NOT NULL, revision INTEGER NOT NULL,
            created INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, name));
          CREATE TABLE IF NOT EXISTS events (
            revision INTEGER PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL);
          CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
          INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
          """)
    }
  }

  deinit {
    for (_, c) in self.watchers.withLock({ $0 }) { c.finish() }
  }

  /// The resource, or nil.
  public func get(_ key: ResourceKey) async throws -> Resource? {
    try await self.pool.read { db in
      try String.fetchOne(
        db, sql: "SELECT body FROM resources WHERE kind = ? AND name = ?",
        arguments: [key.kind.rawValue, key.name]
      ).map(Self.decode)
    }
  }

  /// Every resource of a kind (or all), sorted by kind and name, and the revision they reflect.
  public func list(_ kind: ResourceKind?) async throws -> (resources: [Resource], revision: Int64) {
    try await self.pool.read { db in
      let rows: [String]
      if let kind {
        rows = try String.fetchAll(
          db, sql: "SELECT body FROM resources WHERE kind = ? ORDER BY name", arguments: [kind.rawValue])
      } else {
        rows = try String.fetchAll(db, sql: "SELECT body FROM resources ORDER BY kind, name")
      }
      return (try rows.map(Self.decode), try Self.meta(db, "revision"))
    }
  }

  /// Creates or replaces a resource under `precondition`.
  public func put(_ resource: Resource, if precondition: Precondition) async throws -> Resource {
    try await self.write { db in
      let key = resource.key
      let current = try Self.fetch(db, key)
      try Self.check(precondition, current: current, key: key)
      let revision = try Self.meta(db, "revision") + 1
      var stored = resource
      stored.metadata.revision = revision
      stored.metadata.createdRevision = current?.metadata.createdRevision ?? revision
      let body = try Self.encode(stored)
      try db.execute(
        sql: "INSERT OR REPLACE INTO resources (kind, name, revision, created, body) VALUES (?, ?, ?, ?, ?)",
        arguments: [key.kind.rawValue, key.name, revision, stored.metadata.createdRevision, body])
      return (StoreEvent(revision: revision, type: .put, resource: stored), stored)
    }
  }

  /// Deletes a resource under `precondition`; returns its last state.
  public func delete(_ key: ResourceKey, if precondition: Precondition) async throws -> Resource {
    try await self.write { db in
      guard var current = try Self.fetch(db, key) else { throw StoreError(.notFound, "\(key) not found") }
      try Self.check(precondition, current: current, key: key)
      let revision = try Self.meta(db, "revision") + 1
      try db.execute(
        sql: "DELETE FROM resources WHERE kind = ? AND name = ?", arguments: [key.kind.rawValue, key.name])
      current.metadata.revision = revision
      return (StoreEvent(revision: revision, type: .delete, resource: current), current)
    }
  }

  /// The latest revision.
  public func currentRevision() async throws -> Int64 {
    try await self.pool.read { db in try Self.meta(db, "revision") }
  }

  /// Every change after `revision`: history first, then live changes, in order.
  public func watch(after revision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error> {
    let (stream, continuation) = AsyncThrowingStream<StoreEvent, any Error>.makeStream()
    let id = self.nextWatcher.wrappingAdd(1, ordering: .relaxed).newValue
    // Register under the writer's lock so no event falls between the history read and the
    // live feed: writes publish while holding the writer, and this read is serialized with them.
    try await self.pool.writeWithoutTransaction { db in
      let compacted = try Self.meta(db, "compacted")
      guard revision >= compacted else {
        throw StoreError(
          .compacted,
          "history before revision \(compacted) is compacted; list again and watch from its revision")
      }
      let rows = try Row.fetchAll(
        db, sql: "SELECT type, body FROM events WHERE revision > ? ORDER BY revision", arguments: [revision])
      for row in rows {
        let body: String = row["body"]
        let type: String = row["type"]
        let resource = try Self.decode(body)
        continuation.yield(
          StoreEvent(
            revision: resource.metadata.revision ?? 0, type: StoreEvent.Kind(rawValue: type) ?? .put,
            resource: resource))
      }
      self.watchers.withLock { $0[id] = continuation }
    }
    continuation.onTermination = { [weak self] _ in
      _ = self?.watchers.withLock { $0.removeValue(forKey: id) }
    }
    return stream
  }

  /// Runs one write transaction that produces an event, then publishes the event to watchers
  /// while still on the writer, so watchers see events in revision order.
  private func write<T: Sendable>(
    _ body: @escaping @Sendable (Database) throws -> (StoreEvent, T)
  ) async throws -> T {
    try await self.pool.writeWithoutTransaction { db in
      var produced: (StoreEvent, T)?
      try db.inTransaction {
        let (event, value) = try body(db)
        try db.execute(
          sql: "INSERT INTO events (revision, type, body) VALUES (?, ?, ?)",
          arguments: [event.revision, event.type.rawValue, try Self.encode(event.resource)])
        try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'revision'", arguments: [event.revision])
        if event.revision % 1000 == 0 && event.revision > self.historyLimit {
          let floor = event.revision - self.historyLimit
          try db.execute(sql: "DELETE FROM events WHERE revision <= ?", arguments: [floor])
          try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'compacted'", arguments: [floor])
        }
        produced = (event, value)
        return .commit
      }
      let (event, value) = produced!
      for (_, c) in self.watchers.withLock({ $0 }) { c.yield(event) }
      return value
    }
  }

  private static func check(_ p: Precondition, current: Resource?, key: ResourceKey) throws {
    switch p {
    case .none: return
    case .absent:
      if current != nil { throw StoreError(.conflict, "\(key) exists already") }
    case .revision(let r):
      guard let current else { throw StoreError(.conflict, "\(key) does not exist (expected revision \(r))") }
      guard current.metadata.revision == r else {
        throw StoreError(
          .conflict,
          "\(key) changed: it is at revision \(current.metadata.revision ?? 0), not \(r); read it again")
      }
    }
  }

  private static func fetch(_ db: Database, _ key: ResourceKey) throws -> Resource? {
    try String.fetchOne(
      db, sql: "SELECT body FROM resources WHERE kind = ? AND name = ?",
      arguments: [key.kind.rawValue, key.name]
    ).map(Self.decode)
  }

  private static func meta(_ db: Database, _ key: String) throws -> Int64 {
    try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) ?? 0
  }

  private static func encode(_ r: Resource) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(decoding: try encoder.encode(r), as: UTF8.self)
  }

  private static func decode(_ body: String) throws -> Resource {
    try JSONDecoder().decode(Resource.self, from: Data(body.utf8))
  }
}
