import Foundation
import Testing
import WeftModel
import WeftStore

/// A store in a fresh directory `weft-store-PID-UUID` under the temporary directory. The stores
/// stay open until the test process ends, so directories are removed by the next run: those of
/// test processes that are gone (and of older runs, named without a pid), once per process.
func temporaryStore(historyLimit: Int64 = 10_000) throws -> (SQLiteStore, String) {
  _ = sweptStores
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
    "weft-store-\(getpid())-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  let path = dir.appendingPathComponent("weft.db").path
  return (try SQLiteStore(path: path, historyLimit: historyLimit), path)
}

let sweptStores: Void = {
  let tmp = FileManager.default.temporaryDirectory
  for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []
  where name.hasPrefix("weft-store-") {
    let pid = name.dropFirst("weft-store-".count).split(separator: "-").first.flatMap { Int32($0) }
    if pid != getpid() && (pid == nil || kill(pid!, 0) != 0) {
      try? FileManager.default.removeItem(at: tmp.appendingPathComponent(name))
    }
  }
}()

func network(_ name: String, _ cidr: String) throws -> Resource {
  try Resource(kind: .network, name: name, spec: NetworkSpec(cidr: cidr))
}

@Suite("SQLite store: revisions, compare-and-put, watch")
struct SQLiteStoreTests {
  @Test func revisionsAndCompareAndPut() async throws {
    let (store, _) = try temporaryStore()
    let a = try await store.put(try network("a", "100.96.0.0/16"), if: .absent)
    #expect(a.metadata.revision == 1)
    #expect(a.metadata.createdRevision == 1)
    await #expect(throws: StoreError.self) {
      try await store.put(try network("a", "100.96.0.0/16"), if: .absent)
    }
    let a2 = try await store.put(try network("a", "100.98.0.0/16"), if: .revision(1))
    #expect(a2.metadata.revision == 2)
    #expect(a2.metadata.createdRevision == 1)
    let stale = await #expect(throws: StoreError.self) {
      try await store.put(try network("a", "100.99.0.0/16"), if: .revision(1))
    }
    #expect(stale?.code == .conflict)
    #expect(try await store.get(a.key)?.decodeSpec(NetworkSpec.self).cidr == "100.98.0.0/16")
    _ = try await store.put(try network("b", "100.100.0.0/16"), if: .none)
    let (all, rev) = try await store.list(.network)
    #expect(all.map(\.metadata.name) == ["a", "b"])
    #expect(rev == 3)
    let gone = try await store.delete(a.key, if: .none)
    #expect(gone.metadata.revision == 4)
    #expect(try await store.get(a.key) == nil)
    let missing = await #expect(throws: StoreError.self) { try await store.delete(a.key, if: .none) }
    #expect(missing?.code == .notFound)
  }

  @Test func watchResumesFromARevisionThenFollowsLive() async throws {
    let (store, _) = try temporaryStore()
    for i in 1...3 { _ = try await store.put(try network("n\(i)", "100.\(95 + i).0.0/16"), if: .none) }
    let stream = try await store.watch(after: 1)
    var it = stream.makeAsyncIterator()
    #expect(try await it.next()?.revision == 2)
    #expect(try await it.next()?.revision == 3)
    _ = try await store.delete(ResourceKey(kind: .network, name: "n1"), if: .none)
    let live = try await it.next()
    #expect(live?.revision == 4)
    #expect(live?.type == .delete)
    #expect(live?.resource.metadata.name == "n1")
  }

  @Test func stateSurvivesReopen() async throws {
    let (store, path) = try temporaryStore()
    _ = try await store.put(try network("keep", "100.96.0.0/16"), if: .none)
    let reopened = try SQLiteStore(path: path)
    #expect(try await reopened.get(ResourceKey(kind: .network, name: "keep")) != nil)
    #expect(try await reopened.currentRevision() == 1)
    // History survives too: a watcher resumes from revision 0.
    var it = try await reopened.watch(after: 0).makeAsyncIterator()
    #expect(try await it.next()?.resource.metadata.name == "keep")
  }

  @Test func compactedHistoryIsReported() async throws {
    let (store, _) = try temporaryStore(historyLimit: 10)
    for i in 0..<1000 { _ = try await store.put(try network("n", "100.96.0.0/16"), if: .none); _ = i }
    let error = await #expect(throws: StoreError.self) { _ = try await store.watch(after: 5) }
    #expect(error?.code == .compacted)
    var it = try await store.watch(after: 995).makeAsyncIterator()
    #expect(try await it.next()?.revision == 996)
  }
}
