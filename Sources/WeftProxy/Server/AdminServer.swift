import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix

/// The sidecar's admin listener (15000): `/ready`, `/config` (the snapshot in use, JSON),
/// `/clusters` (every service's endpoints with their counts, JSON) and `/metrics` (Prometheus
/// text). Plain NIO HTTP/1.1, one small handler: it must cost next to nothing while idle.
public enum AdminServer {
  /// Binds the admin listener for `proxy`.
  public static func start(
    host: String = "0.0.0.0", port: Int = 15000, proxy: SidecarProxy,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) async throws -> any Channel {
    try await ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(AdminHandler(proxy: proxy))
        }
      }
      .bind(host: host, port: port).get()
  }

  /// The answer for a path: status, content type, body.
  static func answer(_ path: String, proxy: SidecarProxy) -> (HTTPResponseStatus, String, String) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    func json(_ value: some Encodable) -> (HTTPResponseStatus, String, String) {
      let body = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) + "\n" } ?? "{}\n"
      return (.ok, "application/json", body)
    }
    switch path.split(separator: "?").first.map(String.init) ?? path {
    case "/ready": return (.ok, "text/plain", "ready\n")
    case "/config": return json(proxy.table.snapshot)
    case "/clusters": return json(proxy.table.clusters)
    case "/identity":
      guard let status = proxy.tls.status else {
        return (.notFound, "text/plain", "no mesh credentials yet (plaintext)\n")
      }
      return json(status)
    case "/metrics":
      let text =
        ProxyMetrics.render(
          counters: proxy.counters, clusters: proxy.table.clusters, version: proxy.table.version)
        + proxy.metrics.render()
        + ProxyMetrics.render(
          overflows: proxy.table.overflows, retriesExhausted: proxy.table.retriesExhausted)
      return (.ok, "text/plain; version=0.0.4", text)
    default:
      return (.notFound, "text/plain", "no such page; try /ready, /config, /clusters, /identity, /metrics\n")
    }
  }
}

/// Answers one admin request per head, keep-alive as the client asks.
final class AdminHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let proxy: SidecarProxy
  private var head: HTTPRequestHead?

  init(proxy: SidecarProxy) { self.proxy = proxy }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch self.unwrapInboundIn(data) {
    case .head(let head): self.head = head
    case .body: break
    case .end:
      guard let head = self.head else { return }
      self.head = nil
      let (status, type, body) =
        head.method == .GET
        ? AdminServer.answer(head.uri, proxy: self.proxy)
        : (.methodNotAllowed, "text/plain", "GET only\n")
      var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
      buffer.writeString(body)
      var headers = HTTPHeaders([("content-type", type), ("content-length", String(buffer.readableBytes))])
      if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
      context.write(
        self.wrapOutboundOut(
          .head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
      context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
      let written = context.eventLoop.makePromise(of: Void.self)
      if !head.isKeepAlive {
        let channel = context.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
      }
      context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: written)
    }
  }
}
