import Foundation
import Hummingbird
import NIOCore

/// `weft echo serve`: the mesh's test workload. Answers every request with its workload name (in
/// the body and the `x-weft-workload` header); echoes the body of requests that carry one; can be
/// told to add latency or fail a share of requests. `GET /healthz` is 200, or 503 once told
/// `healthy: false`. `GET /_weft/echo/served` counts the requests answered so far (health checks
/// and control requests aside), so a test can see what reached the workload.
public enum EchoServer {
  /// The header naming the workload that answered.
  public static let workloadHeader = "x-weft-workload"
  /// Where the behaviour is read (GET) and changed (PUT, JSON).
  public static let controlPath = "/_weft/echo"
  /// Where the count of answered requests is read (GET, JSON `{"served": N}`).
  public static let servedPath = "/_weft/echo/served"

  /// The router of one server; all its ports share `behaviour`.
  static func router(_ behaviour: EchoBehaviourBox) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("healthz") { _, _ -> Response in
      let healthy = behaviour.current.healthy ?? true
      return Response(
        status: healthy ? .ok : .serviceUnavailable,
        body: .init(byteBuffer: ByteBuffer(string: healthy ? "ok\n" : "unhealthy\n")))
    }
    router.get(RouterPath(controlPath)) { _, _ in try Self.json(behaviour.current) }
    router.get(RouterPath(servedPath)) { _, _ in try Self.json(["served": behaviour.served]) }
    router.put(RouterPath(controlPath)) { request, context in
      let next = try await request.decode(as: EchoBehaviour.self, context: context)
      if let problem = next.problem { throw HTTPError(.badRequest, message: problem) }
      behaviour.current = next
      return try Self.json(next)
    }
    let answer: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
      behaviour.countServed()
      return try await Self.answer(request, behaviour: behaviour.current)
    }
    router.on("/", method: .get, use: answer)
    router.on("/", method: .post, use: answer)
    router.on("**", method: .get, use: answer)
    router.on("**", method: .post, use: answer)
    router.on("**", method: .put, use: answer)
    router.on("**", method: .delete, use: answer)
    router.on("**", method: .patch, use: answer)
    router.on("**", method: .head, use: answer)
    return router
  }

  /// One answer: delay, maybe fail, else the name (or the request's body echoed back).
  static func answer(_ request: Request, behaviour: EchoBehaviour) async throws -> Response {
    if behaviour.latencyMilliseconds > 0 {
      try await Task.sleep(for: .milliseconds(behaviour.latencyMilliseconds))
    }
    var headers: HTTPFields = [:]
    headers[.init(Self.workloadHeader)!] = behaviour.name
    if behaviour.failRatio > 0, Double.random(in: 0..<1) < behaviour.failRatio {
      return Response(
        status: .init(code: behaviour.failStatus), headers: headers,
        body: .init(byteBuffer: ByteBuffer(string: "\(behaviour.name) failed\n")))
    }
    var body = try await request.body.collect(upTo: 16 << 20)
    if body.readableBytes == 0 { body = ByteBuffer(string: "\(behaviour.name)\n") }
    headers[.contentType] = "text/plain"
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
  }

  static func json(_ value: some Encodable) throws -> Response {
    let data = try JSONEncoder().encode(value)
    return Response(
      status: .ok, headers: [.contentType: "application/json"],
      body: .init(byteBuffer: ByteBuffer(bytes: data)))
  }

  /// Serves HTTP/1.1 on every port of `ports` at `host` until the task is cancelled. `onReady`
  /// gets each port once it listens (the bound one when 0 was asked for).
  public static func run(
    host: String = "0.0.0.0", ports: [Int], behaviour: EchoBehaviour,
    onReady: @escaping @Sendable (Int) async -> Void = { _ in }
  ) async throws {
    try await Self.run(host: host, ports: ports, shared: EchoBehaviourBox(behaviour), onReady: onReady)
  }

  /// Serves as ``run(host:ports:behaviour:onReady:)`` with a behaviour shared with other
  /// listeners (the HTTP/2 echo), so that one `PUT` changes them all.
  public static func run(
    host: String = "0.0.0.0", ports: [Int], shared box: EchoBehaviourBox,
    onReady: @escaping @Sendable (Int) async -> Void = { _ in }
  ) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
      for port in ports {
        group.addTask {
          let app = Application(
            router: Self.router(box),
            configuration: .init(address: .hostname(host, port: port), serverName: "weft-echo"),
            onServerRunning: { channel in await onReady(channel.localAddress?.port ?? port) })
          try await app.runService()
        }
      }
      try await group.next()
      group.cancelAll()
    }
  }
}
