import NIOCore
import NIOTLS

/// Sits behind the TLS handler on a mesh connection an endpoint's sidecar accepted: once the
/// handshake is done it hands the connection on by its ALPN token (`ready`), holding back the
/// decrypted bytes that arrive before the next handler is in place, then leaves.
final class TLSInboundGate: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer

  private let ready: (String?, TLSInboundGate) -> Void
  private var held: [ByteBuffer] = []
  /// The caller half-closed (close_notify) before the next handler was there.
  private var inputClosed = false
  private var context: ChannelHandlerContext?
  private var open = false

  /// `ready` gets the negotiated ALPN token; it sets up what follows and calls ``release()``.
  init(ready: @escaping (String?, TLSInboundGate) -> Void) { self.ready = ready }

  func handlerAdded(context: ChannelHandlerContext) { self.context = context }

  /// The context holds this handler: keeping it after leaving would keep both, and with them
  /// the whole connection (its TLS state and buffers, some 33 KB), alive for ever.
  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
      self.ready(negotiated, self)
      return
    }
    if !self.open, case ChannelEvent.inputClosed = event {
      self.inputClosed = true
      return
    }
    context.fireUserInboundEventTriggered(event)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if self.open {
      context.fireChannelRead(data)
    } else {
      self.held.append(self.unwrapInboundIn(data))
    }
  }

  /// Passes what was held to the handlers after this one, and leaves the pipeline.
  func release() {
    guard let context, !self.open else { return }
    self.open = true
    for bytes in self.held { context.fireChannelRead(NIOAny(bytes)) }
    if !self.held.isEmpty { context.fireChannelReadComplete() }
    self.held = []
    if self.inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
    context.pipeline.syncOperations.removeHandler(self, promise: nil)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A failed handshake (an untrusted or missing client certificate) ends the connection.
    context.close(promise: nil)
  }
}
