import NIOCore
import NIOHTTP1

/// How the sidecar sets up HTTP/1.1 on a client connection and on an upstream one, and how it
/// takes HTTP off both once an upgrade (WebSocket) is agreed, leaving a byte tunnel.
enum HTTPPipeline {
  /// Header limits: at most 100 fields and 60 KiB of names and values (Envoy's defaults); a
  /// request over them is answered 400 and the connection closed.
  static let limits: NIOHTTPDecoderLimitConfiguration = {
    var limits = NIOHTTPDecoderLimitConfiguration()
    limits.maxHeaderFieldCount = 100
    limits.maxHeaderFieldSize = 60 * 1024
    limits.maxHeaderListSize = 60 * 1024
    return limits
  }()

  /// NIO's server pipeline, with the decoder keeping the bytes that follow an upgrade request
  /// (an empty upgrader list does that; the upgrade handler leaves after the first request).
  /// Pipelined requests and drains are ``HTTPForwarder``'s to handle (NIO's pipelining handler
  /// would take read interest back and give it again on every request), and outbound headers
  /// are not validated again: they are the ones NIO's parser accepted, or the proxy's own.
  static func configureServer(_ channel: any Channel) throws {
    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
      withPipeliningAssistance: false,
      withServerUpgrade: (upgraders: [], completionHandler: { _ in }), withErrorHandling: true,
      withOutboundHeaderValidation: false, withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
      withDecoderLimitConfiguration: Self.limits)
  }

  /// NIO's client handlers, keeping the bytes that follow a 101 response; the request headers
  /// were validated as they were parsed from the client.
  static func configureClient(_ channel: any Channel) throws {
    try channel.pipeline.syncOperations.addHTTPClientHandlers(
      leftOverBytesStrategy: .forwardBytes, enableOutboundHeaderValidation: false)
  }

  /// Replaces HTTP on both channels (same event loop) with a byte relay. Outbound HTTP handlers
  /// go first on both sides, then the decoders, whose buffered bytes (the first frames) then
  /// flow through the relay and are flushed.
  static func switchToTunnel(client: any Channel, upstream: any Channel) throws {
    let (clientSide, upstreamSide) = RelayHandler.pair()
    let clientOps = client.pipeline.syncOperations
    let upstreamOps = upstream.pipeline.syncOperations
    try clientOps.addHandler(clientSide)
    try upstreamOps.addHandler(upstreamSide)
    func remove<H: RemovableChannelHandler>(_ ops: ChannelPipeline.SynchronousOperations, _ type: H.Type) {
      if let handler = try? ops.handler(type: type) { ops.removeHandler(handler, promise: nil) }
    }
    remove(clientOps, HTTPServerPipelineHandler.self)
    remove(clientOps, NIOHTTPResponseHeadersValidator.self)
    remove(clientOps, HTTPServerProtocolErrorHandler.self)
    remove(clientOps, HTTPResponseEncoder.self)
    remove(clientOps, HTTPForwarder.self)
    remove(upstreamOps, NIOHTTPRequestHeadersValidator.self)
    remove(upstreamOps, UpstreamHandler.self)
    remove(upstreamOps, HTTPRequestEncoder.self)
    // A decoder leaves on the next loop tick, handing on the bytes it held (the endpoint's first
    // frames, when they came in the same read as its 101) without a read-complete, which is
    // when a relay flushes: so once both have left, flush both ways, or those bytes wait for a
    // next read that may never come.
    let decoders = [
      Self.remove(clientOps, ByteToMessageHandler<HTTPRequestDecoder>.self, on: client),
      Self.remove(upstreamOps, ByteToMessageHandler<HTTPResponseDecoder>.self, on: upstream),
    ]
    EventLoopFuture.andAllComplete(decoders, on: client.eventLoop).assumeIsolated().whenComplete { _ in
      client.flush()
      upstream.flush()
    }
  }

  /// Removes a handler of `type` if there is one; the future completes once it has left.
  private static func remove<H: RemovableChannelHandler>(
    _ ops: ChannelPipeline.SynchronousOperations, _ type: H.Type, on channel: any Channel
  ) -> EventLoopFuture<Void> {
    guard let handler = try? ops.handler(type: type) else {
      return channel.eventLoop.makeSucceededVoidFuture()
    }
    let removed = channel.eventLoop.makePromise(of: Void.self)
    ops.removeHandler(handler, promise: removed)
    return removed.futureResult
  }
}
