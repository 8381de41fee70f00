import NIOCore
import NIOHTTP2

/// One HTTP/2 connection of a session to an endpoint, shared by the streams relayed there: it
/// numbers the streams it opens, hands each frame that comes back to its exchange, and gives
/// the endpoint's DATA back as credit once the client took it. Streams asked for while it is
/// still connecting wait for it. The connection's handler, after its `NIOHTTP2Handler`.
final class HTTP2UpstreamConnection: ChannelInboundHandler {
  typealias InboundIn = HTTP2Frame
  typealias OutboundOut = HTTP2Frame

  let endpoint: EndpointAddress
  private let session: HTTP2Session
  private var context: ChannelHandlerContext?
  private var channel: (any Channel)?
  private var waiting: [(Result<HTTP2UpstreamConnection, any Error>) -> Void] = []
  private var failure: (any Error)?
  private var nextStreamID = HTTP2StreamID(1)
  private var legs: [HTTP2StreamID: HTTP2Leg] = [:]
  private var credit = HTTP2Session.newCredit()
  private var unflushed = false
  private var closed = false

  /// The highest stream ID a client may use; a connection that reaches it takes no new streams.
  private static let lastStreamID = HTTP2StreamID(Int32.max - 2)

  init(session: HTTP2Session, endpoint: EndpointAddress) {
    self.session = session
    self.endpoint = endpoint
  }

  /// Calls `body` with this connection once it is connected (at once when it is), or with why
  /// it could not be.
  func whenReady(_ body: @escaping (Result<HTTP2UpstreamConnection, any Error>) -> Void) {
    if let failure { return body(.failure(failure)) }
    if self.closed { return body(.failure(ChannelError.ioOnClosedChannel)) }
    if self.context != nil { return body(.success(self)) }
    self.waiting.append(body)
  }

  func connected(_ channel: any Channel) {
    self.channel = channel
    if self.closed { channel.close(promise: nil) }
    let waiting = self.waiting
    self.waiting = []
    for body in waiting {
      body(self.context == nil ? .failure(ChannelError.ioOnClosedChannel) : .success(self))
    }
  }

  func failed(_ error: any Error) {
    self.failure = error
    self.closed = true
    self.session.retire(self, closed: true)
    let waiting = self.waiting
    self.waiting = []
    for body in waiting { body(.failure(error)) }
  }

  /// Opens a stream for `exchange`'s attempt: the caller writes its HEADERS next.
  func open(for exchange: HTTP2Exchange, attempt: Int) -> HTTP2Leg {
    let leg = HTTP2Leg(connection: self, id: self.nextStreamID, exchange: exchange, attempt: attempt)
    self.legs[leg.id] = leg
    self.nextStreamID = self.nextStreamID.advanced(by: 2)
    if self.nextStreamID >= Self.lastStreamID { self.session.retire(self, closed: false) }
    return leg
  }

  /// Writes a frame on one of this connection's streams (the session flushes it).
  func write(_ id: HTTP2StreamID, _ payload: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>? = nil)
  {
    guard let context else {
      promise?.fail(ChannelError.ioOnClosedChannel)
      return
    }
    context.write(self.wrapOutboundOut(HTTP2Frame(streamID: id, payload: payload)), promise: promise)
    if !self.unflushed {
      self.unflushed = true
      self.session.markUnflushed(self)
    }
  }

  func flush() {
    guard self.unflushed else { return }
    self.unflushed = false
    self.context?.flush()
  }

  /// Resets a stream whose exchange gave up on it (CANCEL), and forgets it.
  func reset(_ leg: HTTP2Leg) {
    guard self.legs.removeValue(forKey: leg.id) != nil else { return }
    leg.closed = true
    self.write(leg.id, .rstStream(.cancel))
  }

  /// Forgets a stream that ended both ways, leaving it to close by itself: resetting it would
  /// send the endpoint a RST_STREAM, and an endpoint's rapid-reset guard counts those against
  /// the whole connection.
  func detach(_ leg: HTTP2Leg) {
    self.legs[leg.id] = nil
    leg.closed = true
  }

  /// Gives `bytes` of the endpoint's DATA on stream `id` back (nil: only the connection's).
  func giveBack(_ bytes: Int, stream id: HTTP2StreamID?) {
    let updates = self.credit.give(bytes, stream: id)
    if let update = updates.stream { self.write(update.streamID, update.payload) }
    if let update = updates.connection { self.write(update.streamID, update.payload) }
  }

  func close() {
    self.closed = true
    self.channel?.close(promise: nil)
  }

  // MARK: - The connection's handler

  func handlerAdded(context: ChannelHandlerContext) { self.context = context }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let frame = self.unwrapInboundIn(data)
    self.session.reading = true
    switch frame.payload {
    case .headers, .data:
      if let leg = self.legs[frame.streamID] {
        leg.exchange.upstreamFrame(frame.payload, on: leg)
      } else if case .data(let data) = frame.payload {
        self.giveBack(HTTP2Credit.flowControlled(data), stream: nil)
      }
    case .rstStream(let code):
      // How the endpoint ended the stream (REFUSED_STREAM can be retried whatever the method);
      // its close event follows.
      self.legs[frame.streamID]?.resetCode = code
    case .goAway(let last, _, _):
      // No new streams here; those after `last` were never processed: refused, so retriable.
      self.session.retire(self, closed: false)
      for (id, leg) in self.legs where id > last {
        self.legs[id] = nil
        leg.closed = true
        leg.resetCode = .refusedStream
        leg.exchange.upstreamClosed(leg)
      }
    case .settings(.settings):
      if let grow = self.credit.growConnection() { self.write(grow.streamID, grow.payload) }
    default:
      break
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    self.session.readComplete()
    context.fireChannelReadComplete()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let closed = event as? StreamClosedEvent {
      self.credit.closed(closed.streamID)
      if let leg = self.legs.removeValue(forKey: closed.streamID) {
        leg.closed = true
        if let reason = closed.reason { leg.resetCode = reason }
        leg.exchange.upstreamClosed(leg)
      }
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.closed = true
    self.session.retire(self, closed: true)
    let legs = self.legs
    self.legs = [:]
    for leg in legs.values {
      leg.closed = true
      leg.exchange.upstreamClosed(leg)
    }
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // Stream errors reset their stream (seen as its close event); connection errors close the
    // connection (``HTTP2Session/handler(mode:channel:)``).
  }
}

/// One attempt of an exchange: a stream on an upstream connection.
final class HTTP2Leg {
  let connection: HTTP2UpstreamConnection
  let id: HTTP2StreamID
  let exchange: HTTP2Exchange
  let attempt: Int
  /// How the endpoint reset the stream, if it did.
  var resetCode: HTTP2ErrorCode?
  /// The connection forgot the stream (it closed, or was reset or left to close by itself).
  var closed = false

  init(connection: HTTP2UpstreamConnection, id: HTTP2StreamID, exchange: HTTP2Exchange, attempt: Int) {
    self.connection = connection
    self.id = id
    self.exchange = exchange
    self.attempt = attempt
  }
}
