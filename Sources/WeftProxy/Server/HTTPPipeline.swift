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
  static func configureServer(_ channel: any Channel) throws {
    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
      withServerUpgrade: (upgraders: [], completionHandler: { _ in }), withErrorHandling: true,
      withOutboundHeaderValidation: true, withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
      withDecoderLimitConfiguration: Self.limits)
  }

  /// NIO's client handlers, keeping the bytes that follow a 101 response.
  static func configureClient(_ channel: any Channel) throws {
    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
  }

  /// Replaces HTTP on both channels (same event loop) with a byte relay. Outbound HTTP handlers
  /// go first on both sides, then the decoders, whose buffered bytes (the first frames) then
  /// flow through the relay.
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
    remove(clientOps, ByteToMessageHandler<HTTPRequestDecoder>.self)
    remove(upstreamOps, ByteToMessageHandler<HTTPResponseDecoder>.self)
  }
}
