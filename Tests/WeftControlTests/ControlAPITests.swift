import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import WeftClient
import WeftControl
import WeftManifest
import WeftModel
import WeftStore
import WeftWire

/// A fresh store directory `weft-ctl-PID-UUID` under the temporary directory. Directories of test
/// processes that are gone (and of older runs, named without a pid) are removed first, once.
func makeStoreDirectory() throws -> URL {
  _ = sweptStoreDirectories
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
    "weft-ctl-\(getpid())-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  return dir
}

let sweptStoreDirectories: Void = {
  let tmp = FileManager.default.temporaryDirectory
  for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []
  where name.hasPrefix("weft-ctl-") {
    let pid = name.dropFirst("weft-ctl-".count).split(separator: "-").first.flatMap { Int32($0) }
    if pid != getpid() && (pid == nil || kill(pid!, 0) != 0) {
      try? FileManager.default.removeItem(at: tmp.appendingPathComponent(name))
    }
  }
}()

func makeController() throws -> Controller {
  let dir = try makeStoreDirectory()
  return Controller(store: try SQLiteStore(path: dir.appendingPathComponent("weft.db").path))
}

func makeApp(_ controller: Controller) -> some ApplicationProtocol {
  Application(router: ControlServer.router(controller: controller, token: "s3cret"))
}

let networksYAML = """
  apiVersion: weft/v1
  kind: Network
  metadata: {name: blue}
  spec: {cidr: 100.96.0.0/16}
  ---
  apiVersion: weft/v1
  kind: Network
  metadata: {name: red}
  spec: {cidr: 100.97.0.0/16, vni: 77}
  """

@Suite("controller API over HTTP")
struct ControlAPITests {
  @Test func tokenIsRequired() async throws {
    try await makeApp(try makeController()).test(.router) { client in
      try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
      try await client.execute(uri: "/v1/networks", method: .get) { response in
        #expect(response.status == .unauthorized)
        #expect(String(buffer: response.body).contains("no token"))
      }
      try await client.execute(uri: "/v1/networks", method: .get, headers: [.authorization: "Bearer nope"]) {
        #expect($0.status == .unauthorized)
      }
    }
  }

  @Test func applyValidatesEverythingBeforeWritingAnything() async throws {
    let controller = try makeController()
    try await makeApp(controller).test(.live) { server in
      let client = ControlClient(baseURL: "http://127.0.0.1:\(server.port!)", token: "s3cret")
      let applied = try await client.apply(try Manifest.parse(networksYAML))
      #expect(applied.items.map(\.metadata.name) == ["blue", "red"])
      #expect(try applied.items[0].decodeStatus(NetworkStatus.self)?.vni == 1)  // allocated
      #expect(try applied.items[1].decodeStatus(NetworkStatus.self)?.vni == 77)  // as asked
      let before = try await controller.store.currentRevision()

      // The second document is bad (VNI taken): neither is written.
      let bad = """
        apiVersion: weft/v1
        kind: Network
        metadata: {name: green}
        spec: {cidr: 100.98.0.0/16}
        ---
        apiVersion: weft/v1
        kind: Network
        metadata: {name: pink}
        spec: {cidr: 100.99.0.0/16, vni: 77}
        """
      let error = await #expect(throws: ControlError.self) { try await client.apply(try Manifest.parse(bad)) }
      #expect(error?.status == 400)
      #expect(error?.message == "Network/pink: spec.vni: VNI 77 is taken by network red")
      // Overlap between two documents of one batch is caught too.
      let overlapping = """
        apiVersion: weft/v1
        kind: Network
        metadata: {name: a}
        spec: {cidr: 100.100.0.0/16}
        ---
        apiVersion: weft/v1
        kind: Network
        metadata: {name: b}
        spec: {cidr: 100.100.128.0/17}
        """
      await #expect(throws: ControlError.self) { try await client.apply(try Manifest.parse(overlapping)) }
      #expect(try await controller.store.currentRevision() == before)
      #expect(try await client.list(.network).items.count == 2)

      // Hosts cannot be applied; unknown names are 404 and read as nil.
      let host = try Resource(kind: .host, name: "h", spec: HostSpec(underlay: "198.18.0.1"))
      await #expect(throws: ControlError.self) { try await client.apply([host]) }
      #expect(try await client.get(ResourceKey(kind: .network, name: "nope")) == nil)
    }
  }

  @Test func leasesAreDistinctStableAndReleased() async throws {
    let controller = try makeController()
    _ = try await controller.apply(try Manifest.parse(networksYAML))
    var subnets: [String: String] = [:]
    for k in 1...3 {
      let host = try await controller.join(host: "host\(k)", spec: HostSpec(underlay: "198.18.0.\(k)"))
      let status = try #require(try host.decodeStatus(HostStatus.self))
      subnets["host\(k)"] = status.networks["blue"]?.subnet
      #expect(status.networks["red"] != nil)
      #expect(status.phase == "Ready")
    }
    #expect(Set(subnets.values) == ["100.96.1.0/24", "100.96.2.0/24", "100.96.3.0/24"])
    // Joining again (an agent restart) keeps the lease.
    let again = try await controller.join(host: "host2", spec: HostSpec(underlay: "198.18.0.2"))
    #expect(try again.decodeStatus(HostStatus.self)?.networks["blue"]?.subnet == subnets["host2"])
    // Deleting a host releases its lease; the next host gets the freed subnet.
    _ = try await controller.delete(ResourceKey(kind: .host, name: "host2"))
    let blue = try #require(try await controller.store.get(ResourceKey(kind: .network, name: "blue")))
    #expect(try blue.decodeStatus(NetworkStatus.self)?.leases["host2"] == nil)
    let h4 = try await controller.join(host: "host4", spec: HostSpec(underlay: "198.18.0.4"))
    #expect(try h4.decodeStatus(HostStatus.self)?.networks["blue"]?.subnet == subnets["host2"])
  }

  @Test func silentHostsAreLostThenExpired() async throws {
    let dir = try makeStoreDirectory()
    let controller = Controller(
      store: try SQLiteStore(path: dir.appendingPathComponent("weft.db").path), lostAfter: .seconds(30),
      leaseTTL: .seconds(600))
    _ = try await controller.apply(try Manifest.parse(networksYAML))
    _ = try await controller.join(host: "h1", spec: HostSpec(underlay: "198.18.0.1"))
    #expect(try await controller.expireHosts(now: Date().addingTimeInterval(60)).isEmpty)
    let lost = try await controller.store.get(ResourceKey(kind: .host, name: "h1"))
    #expect(try lost?.decodeStatus(HostStatus.self)?.phase == "Lost")
    #expect(try await controller.expireHosts(now: Date().addingTimeInterval(700)) == ["h1"])
    let blue = try await controller.store.get(ResourceKey(kind: .network, name: "blue"))
    #expect(try blue?.decodeStatus(NetworkStatus.self)?.leases.isEmpty == true)
  }

  @Test func watchStreamsFromARevisionOverHTTP() async throws {
    let controller = try makeController()
    try await makeApp(controller).test(.live) { server in
      let client = ControlClient(baseURL: "http://127.0.0.1:\(server.port!)", token: "s3cret")
      _ = try await client.apply(try Manifest.parse(networksYAML))
      var events = try await client.watch(after: 1).makeAsyncIterator()
      // Bookmarks (every 10 s) may come between events on a slow machine: they are skipped.
      var first = try #require(try await events.next())
      while first.type == "bookmark" { first = try #require(try await events.next()) }
      #expect(first.revision == 2)
      #expect(first.resource?.metadata.name == "red")
      _ = try await client.delete(ResourceKey(kind: .network, name: "blue"))
      var deleted = try #require(try await events.next())
      while deleted.type == "bookmark" { deleted = try #require(try await events.next()) }
      #expect(deleted.type == "delete")
      #expect(deleted.resource?.metadata.name == "blue")
      let wrong = ControlClient(baseURL: client.baseURL, token: "x")
      await #expect(throws: ControlError.self) { _ = try await wrong.watch(after: 0) }
    }
  }
}

@Suite("allocators")
struct AllocatorTests {
  @Test func subnetsSkipTheFirstAndFillGaps() {
    let range = IPPrefix("100.96.0.0/22")!
    #expect(Allocators.subnet(in: range, hostLength: 24, taken: [])?.description == "100.96.1.0/24")
    let taken: Set = [IPPrefix("100.96.1.0/24")!, IPPrefix("100.96.3.0/24")!]
    #expect(Allocators.subnet(in: range, hostLength: 24, taken: taken)?.description == "100.96.2.0/24")
    let full: Set = [IPPrefix("100.96.1.0/24")!, IPPrefix("100.96.2.0/24")!, IPPrefix("100.96.3.0/24")!]
    #expect(Allocators.subnet(in: range, hostLength: 24, taken: full) == nil)
  }

  @Test func vniAndVTEPMAC() {
    #expect(Allocators.vni(taken: [1, 2, 4]) == 3)
    #expect(Allocators.vtepMAC(for: IPPrefix("100.96.3.0/24")!).description == "02:57:64:60:03:00")
  }
}
