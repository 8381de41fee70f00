import NIOCore

/// Relays bytes between two channels in both directions: what one side reads the other writes,
/// reads pause while the partner cannot take more (backpressure), and a half-close is passed on
/// as a half-close, so protocols that shut their write side to end a request work through the
/// proxy. Each channel gets one handler; ``pair(_:_:)`` joins them.
final class RelayHandler: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private var partner: RelayHandler?
  private var context: ChannelHandlerContext?
  private var gate = ReadGate()
  private var inputClosed = false
  private var outputClosed = false
  /// Bytes read from this handler's channel (and passed to the partner).
  private(set) var bytesRead = 0

  /// Two handlers that relay to each other.
  static func pair() -> (RelayHandler, RelayHandler) {
    let a = RelayHandler()
    let b = RelayHandler()
    a.partner = b
    b.partner = a
    return (a, b)
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
    self.partner = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let buffer = self.unwrapInboundIn(data)
    self.bytesRead += buffer.readableBytes
    self.partner?.write(buffer)
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    self.partner?.flush()
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.partner?.closeFully()
    context.fireChannelInactive()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let event = event as? ChannelEvent, case .inputClosed = event {
      self.inputClosed = true
      self.partner?.closeOutput()  // the peer finished sending: finish sending to the other side
      self.closeIfDone()
    }
    context.fireUserInboundEventTriggered(event)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { self.partner?.resumeRead() }
    context.fireChannelWritabilityChanged()
  }

  func read(context: ChannelHandlerContext) {
    if self.gate.admits(partnerWritable: self.partner?.isWritable ?? true) { context.read() }
  }

  // MARK: - Called by the partner

  private var isWritable: Bool { self.context?.channel.isWritable ?? false }

  private func write(_ buffer: ByteBuffer) { self.context?.write(self.wrapOutboundOut(buffer), promise: nil) }

  private func flush() { self.context?.flush() }

  private func resumeRead() {
    if self.gate.release() { self.context?.read() }
  }

  private func closeOutput() {
    self.outputClosed = true
    self.context?.close(mode: .output, promise: nil)
    self.closeIfDone()
  }

  /// Both directions finished: nothing more can pass, close the channel.
  private func closeIfDone() {
    if self.inputClosed && self.outputClosed { self.context?.close(promise: nil) }
  }

  private func closeFully() {
    self.context?.close(promise: nil)
  }
}
