import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOWebSocket

/// The streaming side of `weft echo serve`, on SwiftNIO: a WebSocket echo (`--ws-port`) and an
/// HTTP/2 prior-knowledge echo (`--h2-port`, gRPC-like: answers stream as requests do, and end
/// with trailers).
public enum EchoStreamServer {
  /// What was bound.
  public struct Listener: Sendable {
    /// The channel (close it to stop).
    public let channel: any Channel
    /// The bound port.
    public var port: Int { self.channel.localAddress?.port ?? 0 }
  }

  /// Serves WebSocket on `port`: any path upgrades; the server first sends a text frame with
  /// `name`, then echoes every text and binary frame, answers pings, and returns a close.
  /// A plain HTTP request is answered with the name.
  public static func webSocket(host: String, port: Int, name: String) async throws -> Listener {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 24, automaticErrorHandling: true,
            shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
            upgradePipelineHandler: { channel, _ in
              channel.eventLoop.makeCompletedFuture {
                let ops = channel.pipeline.syncOperations
                ops.removeHandler(try ops.handler(type: PlainNameHandler.self), promise: nil)
                try ops.addHandler(WebSocketEchoHandler(name: name))
              }
            })
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
          try channel.pipeline.syncOperations.addHandler(PlainNameHandler(name: name))
        }
      }
      .bind(host: host, port: port).get()
    return Listener(channel: channel)
  }

  /// Serves HTTP/2 with prior knowledge (h2c) on `port`: every stream gets `200` with
  /// `x-weft-workload`, the request's DATA echoed as it arrives (or the name when it has none),
  /// and trailers `grpc-status: 0` and `x-weft-workload` once the request ends. With a shared
  /// `behaviour`, a stream may instead be refused (`refuseStreams`) or fail with its status
  /// (`failRatio`, `failStatus`), and every stream counts as served.
  public static func http2(host: String, port: Int, name: String, behaviour: EchoBehaviourBox? = nil)
    async throws -> Listener
  {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()
          ) { stream in
            stream.eventLoop.makeCompletedFuture {
              try stream.pipeline.syncOperations.addHandler(
                HTTP2EchoStreamHandler(name: name, behaviour: behaviour))
            }
          }
        }
      }
      .bind(host: host, port: port).get()
    return Listener(channel: channel)
  }
}

/// Echoes WebSocket frames after greeting with the workload's name.
final class WebSocketEchoHandler: ChannelInboundHandler {
  typealias InboundIn = WebSocketFrame
  typealias OutboundOut = WebSocketFrame

  private let name: String
  private var closing = false

  init(name: String) { self.name = name }

  func handlerAdded(context: ChannelHandlerContext) {
    let greeting = context.channel.allocator.buffer(string: self.name)
    context.writeAndFlush(
      self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: greeting)), promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let frame = self.unwrapInboundIn(data)
    switch frame.opcode {
    case .text, .binary, .continuation:
      context.write(
        self.wrapOutboundOut(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)),
        promise: nil)
    case .ping:
      context.write(
        self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil
      )
    case .connectionClose:
      guard !self.closing else { return }
      self.closing = true
      let channel = context.channel
      context.writeAndFlush(
        self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData))
      ).whenComplete { _ in channel.close(promise: nil) }
    default:
      break
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

  func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// Answers a plain HTTP/1.1 request (no upgrade) with the name.
final class PlainNameHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let name: String

  init(name: String) { self.name = name }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard case .end = self.unwrapInboundIn(data) else { return }
    let body = context.channel.allocator.buffer(string: self.name + "\n")
    let headers = HTTPHeaders([
      ("content-length", String(body.readableBytes)), (EchoServer.workloadHeader, self.name),
    ])
    context.write(
      self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
      promise: nil)
    context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
  }
}

/// One HTTP/2 stream of the echo: headers at once, DATA echoed as it comes, trailers at the end.
final class HTTP2EchoStreamHandler: ChannelInboundHandler {
  typealias InboundIn = HTTP2Frame.FramePayload
  typealias OutboundOut = HTTP2Frame.FramePayload

  private let name: String
  private let behaviour: EchoBehaviourBox?
  private var echoed = false
  private var done = false

  init(name: String, behaviour: EchoBehaviourBox?) {
    self.name = name
    self.behaviour = behaviour
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !self.done else { return }
    switch self.unwrapInboundIn(data) {
    case .headers(let headers):
      if let behaviour, headers.headers[":method"].first != nil {
        behaviour.countServed()
        let now = behaviour.current
        if now.refuseStreams == true {
          self.done = true
          context.writeAndFlush(self.wrapOutboundOut(.rstStream(.refusedStream)), promise: nil)
          return
        }
        if now.failRatio > 0, Double.random(in: 0..<1) < now.failRatio {
          self.done = true
          let failed = HPACKHeaders([
            (":status", String(now.failStatus)), (EchoServer.workloadHeader, self.name),
          ])
          context.writeAndFlush(
            self.wrapOutboundOut(.headers(.init(headers: failed, endStream: true))), promise: nil)
          return
        }
      }
      if !self.echoed && !headers.headers.contains(name: ":status") && headers.headers[":method"].first != nil
      {
        let type = headers.headers["content-type"].first ?? "text/plain"
        let response = HPACKHeaders([
          (":status", "200"), ("content-type", type), (EchoServer.workloadHeader, self.name),
        ])
        context.write(self.wrapOutboundOut(.headers(.init(headers: response))), promise: nil)
      }
      if headers.endStream { self.end(context) }
    case .data(let data):
      if case .byteBuffer(let buffer) = data.data, buffer.readableBytes > 0 {
        self.echoed = true
        context.write(self.wrapOutboundOut(.data(.init(data: .byteBuffer(buffer)))), promise: nil)
      }
      if data.endStream { self.end(context) }
    default:
      break
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

  private func end(_ context: ChannelHandlerContext) {
    if !self.echoed {
      let body = context.channel.allocator.buffer(string: self.name + "\n")
      context.write(self.wrapOutboundOut(.data(.init(data: .byteBuffer(body)))), promise: nil)
    }
    let trailers = HPACKHeaders([("grpc-status", "0"), (EchoServer.workloadHeader, self.name)])
    context.writeAndFlush(
      self.wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
