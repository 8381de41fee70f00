import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import WeftEcho

/// Runs an echo server on a free loopback port for the body's duration.
func withEchoServer(
  _ behaviour: EchoBehaviour, _ body: @Sendable (String) async throws -> Void
) async throws {
  let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
  try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask {
      try await EchoServer.run(host: "127.0.0.1", ports: [0], behaviour: behaviour) { continuation.yield($0) }
    }
    var iterator = ports.makeAsyncIterator()
    let port = try #require(await iterator.next())
    try await body("http://127.0.0.1:\(port)")
    group.cancelAll()
  }
}

func setBehaviour(_ base: String, _ behaviour: EchoBehaviour) async throws -> Int {
  var request = HTTPClientRequest(url: base + EchoServer.controlPath)
  request.method = .PUT
  request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(behaviour)))
  // A bound for a server that hangs, not a speed test: a loaded CI host took over 5 s.
  let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
  return Int(response.status.code)
}

@Suite("weft echo: the test workload and its client")
struct EchoTests {
  @Test func everyAnswerNamesTheWorkload() async throws {
    try await withEchoServer(EchoBehaviour(name: "b1")) { base in
      let report = await EchoCaller(url: base + "/any/path", count: 200, concurrency: 4).run()
      #expect(report.requests == 200)
      #expect(report.statuses == ["200": 200])
      #expect(report.workloads == ["b1": 200])
      #expect(report.errors.isEmpty)
      #expect(
        report.latency.count == 200 && report.latency.p50 > 0 && report.latency.p99 >= report.latency.p50)
      // A body is echoed back.
      var request = HTTPClientRequest(url: base + "/echo")
      request.method = .POST
      request.body = .bytes(ByteBuffer(string: "hello mesh"))
      let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
      #expect(String(buffer: try await response.body.collect(upTo: 1 << 20)) == "hello mesh")
      #expect(response.headers.first(name: "x-weft-workload") == "b1")
    }
  }

  @Test func behaviourChangesAtRunTime() async throws {
    try await withEchoServer(EchoBehaviour(name: "b2")) { base in
      let status1 = try await setBehaviour(base, EchoBehaviour(name: "b2", failRatio: 1, failStatus: 502))
      #expect(status1 == 200)
      let failing = await EchoCaller(url: base + "/", count: 50, concurrency: 2).run()
      #expect(failing.statuses == ["502": 50])
      #expect(failing.workloads.isEmpty)
      let status2 = try await setBehaviour(base, EchoBehaviour(name: "b2", failRatio: 0.5))
      #expect(status2 == 200)
      let half = await EchoCaller(url: base + "/", count: 400, concurrency: 4).run()
      #expect((100...300).contains(half.statuses["503"] ?? 0), "\(half.statuses)")
      #expect(half.statuses.values.reduce(0, +) == 400)
      let status3 = try await setBehaviour(base, EchoBehaviour(name: "b2", latencyMilliseconds: 30))
      #expect(status3 == 200)
      let slow = await EchoCaller(url: base + "/", count: 5).run()
      #expect(slow.latency.p50 >= 30_000, "an added 30 ms is a lower bound")
      // Bad behaviour is refused and changes nothing.
      let status4 = try await setBehaviour(base, EchoBehaviour(name: "b2", failRatio: 2))
      #expect(status4 == 400)
      #expect(await EchoCaller(url: base + "/", count: 1).run().statuses == ["200": 1])
    }
  }

  @Test func aCallThatReachesNothingCountsErrors() async {
    let report = await EchoCaller(url: "http://127.0.0.1:1/", count: 3, timeout: .seconds(2)).run()
    #expect(report.requests == 3)
    #expect(report.errors.values.reduce(0, +) == 3)
    #expect(report.statuses.isEmpty)
  }

  @Test func percentilesAreNearestRank() {
    let s = LatencySummary(nanoseconds: (1...100).map { UInt64($0) * 1_000 })
    #expect(s.count == 100)
    #expect(s.p50 == 50 && s.p90 == 90 && s.p99 == 99 && s.max == 100)
    #expect(LatencySummary(nanoseconds: []).p99 == 0)
  }
}
