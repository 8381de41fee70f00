import NIOCore

/// Reads a new connection's first bytes until ``ProtocolDetector`` decides what it speaks (or
/// `timeout` passes: opaque), then leaves the pipeline and hands the verdict and the bytes read
/// so far to `decided`, which sets up the right proxying and replays them, with whether the
/// client had finished sending by then (its FIN came before the verdict: whoever takes the
/// connection on must pass that half-close on, as the event itself has gone by).
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer

  private let timeout: TimeAmount
  private let decided: (DetectedProtocol, ByteBuffer, _ inputClosed: Bool) -> Void
  private var buffered: ByteBuffer?
  private var timer: Scheduled<Void>?
  private var done = false
  private var inputClosed = false

  init(timeout: TimeAmount, decided: @escaping (DetectedProtocol, ByteBuffer, _ inputClosed: Bool) -> Void) {
    self.timeout = timeout
    self.decided = decided
  }

  func handlerAdded(context: ChannelHandlerContext) {
    let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
    self.timer = context.eventLoop.scheduleTask(in: self.timeout) {
      let (sniffer, context) = bound.value
      sniffer.finish(.opaque, context: context)
    }
    // The accept path may add this before the channel is active; a read asked for then is lost.
    if context.channel.isActive { context.read() }
  }

  func channelActive(context: ChannelHandlerContext) {
    context.read()
    context.fireChannelActive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = self.unwrapInboundIn(data)
    if self.buffered == nil {
      self.buffered = bytes
    } else {
      self.buffered!.writeBuffer(&bytes)
    }
    let view = self.buffered!.readableBytesView
    if case .detected(let found) = ProtocolDetector.detect(view) { self.finish(found, context: context) }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if !self.done { context.read() }
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    // The client finished sending before a verdict: what came is opaque.
    if let event = event as? ChannelEvent, case .inputClosed = event, !self.done {
      self.inputClosed = true
      self.finish(.opaque, context: context)
      return
    }
    context.fireUserInboundEventTriggered(event)
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.timer?.cancel()
    self.done = true
    context.fireChannelInactive()
  }

  private func finish(_ found: DetectedProtocol, context: ChannelHandlerContext) {
    guard !self.done else { return }
    self.done = true
    self.timer?.cancel()
    let bytes = self.buffered ?? context.channel.allocator.buffer(capacity: 0)
    self.buffered = nil
    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    self.decided(found, bytes, self.inputClosed)
  }
}
