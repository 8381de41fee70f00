import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
import WeftModel

@testable import WeftProxy

/// An endpoint that answers each request with its path: `/slow` 300 ms late, `/held` only
/// once released.
private final class PathEcho: ChannelInboundHandler, Sendable {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart
  /// The answers to `/held` requests, waiting for ``release()``.
  private let held = Mutex<[@Sendable () -> Void]>([])

  /// How many `/held` requests are waiting.
  var holding: Int { self.held.withLock { $0.count } }

  /// Sends the answers held so far.
  func release() {
    for answer in self.held.withLock({ all in
      defer { all = [] }; return all
    }) { answer() }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard case .head(let head) = self.unwrapInboundIn(data) else { return }
    let body = ByteBuffer(string: head.uri)
    let answer: @Sendable (ChannelHandlerContext) -> Void = { context in
      let headers = HTTPHeaders([("content-length", String(body.readableBytes))])
      context.write(
        NIOAny(
          HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
        promise: nil)
      context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
      context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
    }
    if head.uri == "/slow" {
      let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
      context.eventLoop.scheduleTask(in: .milliseconds(300)) { answer(bound.value) }
    } else if head.uri == "/held" {
      let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
      let loop = context.eventLoop
      self.held.withLock { $0.append { loop.execute { answer(bound.value) } } }
    } else {
      answer(context)
    }
  }
}

/// Collects what comes back to the client, and whether the connection closed.
private final class Collected: ChannelInboundHandler, Sendable {
  typealias InboundIn = ByteBuffer
  let text = Mutex("")
  let closed = Mutex(false)

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let buffer = self.unwrapInboundIn(data)
    self.text.withLock { $0 += String(buffer: buffer) }
  }

  func channelInactive(context: ChannelHandlerContext) { self.closed.withLock { $0 = true } }
}

/// The proxy's side of the client's connection.
private final class Accepted: Sendable {
  let channel = Mutex<(any Channel)?>(nil)
}

@Suite("HTTP/1.1 pipelining and drains through the forwarder")
struct PipeliningTests {
  /// A proxy in front of a `PathEcho` endpoint, and a raw client connected to it.
  fileprivate func setUp() async throws -> (
    client: any Channel, collected: Collected, accepted: Accepted, endpoint: PathEcho,
    close: @Sendable () -> Void
  ) {
    let group = MultiThreadedEventLoopGroup.singleton
    let echo = PathEcho()
    let endpoint = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(echo)
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    let table = loopbackServiceTable("echo", targetPort: endpoint.localAddress!.port!)
    let metrics = TrafficMetrics(source: "test")
    let accepted = Accepted()
    let proxy = try await ServerBootstrap(group: group)
      .childChannelOption(.allowRemoteHalfClosure, value: true)  // as the sidecar takes HTTP
      .childChannelInitializer { channel in
        accepted.channel.withLock { $0 = channel }
        return channel.eventLoop.makeCompletedFuture {
          try HTTPPipeline.configureServer(channel)
          try channel.pipeline.syncOperations.addHandler(
            HTTPForwarder(
              table: table, metrics: metrics, draining: DrainFlag(), service: "echo",
              address: 100 << 24 | 64 << 16 | 9, port: 80, mark: 0))
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    let collected = Collected()
    let client = try await ClientBootstrap(group: group)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collected) }
      }
      .connect(to: proxy.localAddress!).get()
    return (
      client, collected, accepted, echo,
      {
        client.close(promise: nil)
        proxy.close(promise: nil)
        endpoint.close(promise: nil)
      }
    )
  }

  func wait(until done: @escaping () -> Bool) async throws {
    for _ in 0..<150 where !done() { try await Task.sleep(for: .milliseconds(20)) }
  }

  @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
    let (client, collected, _, _, close) = try await setUp()
    defer { close() }
    // Three requests in one write; the first one's answer comes last from the endpoint's side
    // if the proxy let them overtake each other.
    let requests = ["/slow", "/b", "/c"].map { "GET \($0) HTTP/1.1\r\nHost: echo\r\n\r\n" }.joined()
    try await client.writeAndFlush(ByteBuffer(string: requests))
    try await wait { collected.text.withLock { $0.components(separatedBy: "HTTP/1.1 200").count } == 4 }
    let text = collected.text.withLock { $0 }
    let bodies = text.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.prefix(while: { $0 != "H" }) }
    #expect(bodies == ["/slow", "/b", "/c"], "\(text)")
    // The connection reads on afterwards.
    try await client.writeAndFlush(ByteBuffer(string: "GET /d HTTP/1.1\r\nHost: echo\r\n\r\n"))
    try await wait { collected.text.withLock { $0.hasSuffix("/d") } }
    #expect(collected.text.withLock { $0.hasSuffix("/d") })
  }

  @Test func aDrainClosesABusyConnectionAfterItsAnswerAndAnIdleOneAtOnce() async throws {
    let (client, collected, accepted, endpoint, close) = try await setUp()
    defer { close() }
    try await client.writeAndFlush(ByteBuffer(string: "GET /held HTTP/1.1\r\nHost: echo\r\n\r\n"))
    // The drain begins while the request waits at the endpoint (the event is handled on the
    // proxy connection's loop before the answer can come back), then the answer is let go.
    try await wait { endpoint.holding == 1 }
    let proxySide = accepted.channel.withLock { $0 }!
    proxySide.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    try await proxySide.eventLoop.submit {}.get()
    #expect(!collected.closed.withLock { $0 }, "a busy connection stays for its answer")
    endpoint.release()
    try await wait { collected.closed.withLock { $0 } }
    let text = collected.text.withLock { $0 }
    #expect(
      text.hasSuffix("/held") && text.lowercased().contains("connection: close"),
      "answered, then closed: \(text)")
    #expect(collected.closed.withLock { $0 })

    let (idle, idleCollected, idleAccepted, _, closeIdle) = try await setUp()
    defer { closeIdle() }
    try await idle.writeAndFlush(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: echo\r\n\r\n"))
    try await wait { idleCollected.text.withLock { $0.hasSuffix("/a") } }
    #expect(!idleCollected.closed.withLock { $0 }, "keep-alive")
    idleAccepted.channel.withLock { $0 }!.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    try await wait { idleCollected.closed.withLock { $0 } }
    #expect(idleCollected.closed.withLock { $0 }, "an idle keep-alive closes at once")
  }

  @Test func aClientThatHalfClosesGetsItsAnswersThenTheConnectionCloses() async throws {
    // The FIN comes while the request waits at the endpoint.
    let (client, collected, _, endpoint, close) = try await setUp()
    defer { close() }
    try await client.writeAndFlush(ByteBuffer(string: "GET /held HTTP/1.1\r\nHost: echo\r\n\r\n"))
    try await wait { endpoint.holding == 1 }
    try await client.close(mode: .output)
    endpoint.release()
    try await wait { collected.closed.withLock { $0 } }
    #expect(collected.text.withLock { $0.hasSuffix("/held") }, "\(collected.text.withLock { $0 })")
    #expect(collected.closed.withLock { $0 }, "closed once answered")

    // Two pipelined requests and the FIN in one go: both answered, in order, then closed.
    let (second, secondCollected, _, _, closeSecond) = try await setUp()
    defer { closeSecond() }
    try await second.writeAndFlush(
      ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: echo\r\n\r\nGET /b HTTP/1.1\r\nHost: echo\r\n\r\n"))
    try await second.close(mode: .output)
    try await wait { secondCollected.closed.withLock { $0 } }
    let text = secondCollected.text.withLock { $0 }
    #expect(text.contains("/slow") && text.hasSuffix("/b"), "\(text)")
    #expect(secondCollected.closed.withLock { $0 })

    // Idle: closed at once.
    let (idle, idleCollected, _, _, closeIdle) = try await setUp()
    defer { closeIdle() }
    try await idle.writeAndFlush(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: echo\r\n\r\n"))
    try await wait { idleCollected.text.withLock { $0.hasSuffix("/a") } }
    try await idle.close(mode: .output)
    try await wait { idleCollected.closed.withLock { $0 } }
    #expect(idleCollected.closed.withLock { $0 }, "an idle connection closes on the client's FIN")
  }
}
