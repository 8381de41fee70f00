import NIOCore
import NIOHTTP1
import NIOPosix

/// The sidecar's client for its host agent's local API: one GET per connection over the agent's
/// unix socket, the answer collected whole. Written on NIO alone, so that the sidecar's process
/// maps no HTTP client stack or Foundation it does not need.
enum AgentClient {
  /// An answer: its status and body.
  struct Response: Sendable {
    var status: HTTPResponseStatus
    var body: ByteBuffer
  }

  /// Why a request got no answer.
  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  /// The most an answer's body may hold.
  static let bodyLimit = 16 << 20

  /// GETs `target` (path and query) from the agent at `socket`; fails after `timeout`.
  static func get(socket: String, target: String, timeout: TimeAmount, group: any EventLoopGroup)
    async throws -> Response
  {
    let loop = group.next()
    let answer = loop.makePromise(of: Response.self)
    let channel: any Channel
    do {
      channel = try await ClientBootstrap(group: loop)
        .connectTimeout(.seconds(5))
        .channelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            try channel.pipeline.syncOperations.addHandler(Collector(answer: answer))
          }
        }
        .connect(unixDomainSocketPath: socket).get()
    } catch {
      answer.fail(error)
      throw Failure(description: "cannot connect to the agent at \(socket): \(error)")
    }
    var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
    head.headers.add(name: "host", value: "agent")
    head.headers.add(name: "connection", value: "close")
    channel.write(HTTPClientRequestPart.head(head), promise: nil)
    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    let timer = loop.scheduleTask(in: timeout) {
      answer.fail(Failure(description: "the agent did not answer \(target) within \(timeout)"))
      channel.close(promise: nil)
    }
    defer {
      timer.cancel()
      channel.close(promise: nil)
    }
    return try await answer.futureResult.get()
  }

  /// Percent-encodes everything but letters, digits, `-`, `.`, `_` and `~` (RFC 3986 unreserved).
  static func encode(_ value: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    for byte in value.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
        UInt8(ascii: "~"):
        out.append(byte)
      default:
        out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// Collects one response and completes `answer` with it (or fails it when the connection ends
  /// first or the body is too large).
  private final class Collector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let answer: EventLoopPromise<Response>
    private var status: HTTPResponseStatus?
    private var body = ByteBuffer()
    private var done = false

    init(answer: EventLoopPromise<Response>) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      guard !self.done else { return }
      switch self.unwrapInboundIn(data) {
      case .head(let head):
        self.status = head.status
      case .body(var bytes):
        guard self.body.readableBytes + bytes.readableBytes <= AgentClient.bodyLimit else {
          self.finish(
            .failure(Failure(description: "the agent's answer is over \(AgentClient.bodyLimit) bytes")))
          context.close(promise: nil)
          return
        }
        self.body.writeBuffer(&bytes)
      case .end:
        if let status = self.status { self.finish(.success(Response(status: status, body: self.body))) }
      }
    }

    func channelInactive(context: ChannelHandlerContext) {
      self.finish(.failure(Failure(description: "the agent closed the connection before answering")))
      context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      self.finish(.failure(error))
      context.close(promise: nil)
    }

    private func finish(_ result: Result<Response, any Error>) {
      guard !self.done else { return }
      self.done = true
      self.answer.completeWith(result)
    }
  }
}
