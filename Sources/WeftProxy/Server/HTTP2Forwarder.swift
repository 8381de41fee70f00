import Glibc
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// Proxies one client connection to an `http2` or `grpc` service stream by stream: every
/// stream the client opens gets its own balancer pick (and route rule), and is relayed as frames
/// onto a stream of an HTTP/2 connection to that endpoint, kept for the client connection's
/// life and shared by its streams. Frames pass unchanged, so trailers (gRPC's status) and
/// streaming in both directions work; a stream that fails is reset alone, the connection and
/// its other streams go on.
final class HTTP2Session {
  private let table: ServiceTable
  let metrics: TrafficMetrics
  private let address: UInt32
  private let port: UInt16
  private let mark: UInt32
  private let loop: any EventLoop
  private var upstreams: [EndpointAddress: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>] = [:]
  private var upstreamChannels: [any Channel] = []
  private var closed = false
  /// The client connection, streams open on it now, the highest stream ID seen, and whether
  /// it is draining (GOAWAY sent: it closes when its last stream ends).
  private weak var client: (any Channel)?
  private var activeStreams = 0
  private var lastStreamID = HTTP2StreamID(0)
  private var draining = false

  /// The sidecar's HTTP/2 settings, both towards clients and upstream: 1 MiB stream windows
  /// (64 KiB would cap a stream at a window per round trip), up to 256 streams at once.
  static let connection: NIOHTTP2Handler.ConnectionConfiguration = {
    var configuration = NIOHTTP2Handler.ConnectionConfiguration()
    configuration.initialSettings = [
      HTTP2Setting(parameter: .maxConcurrentStreams, value: 256),
      HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
      HTTP2Setting(parameter: .maxHeaderListSize, value: 64 << 10),
    ]
    configuration.targetWindowSize = 4 << 20
    return configuration
  }()
  static let stream: NIOHTTP2Handler.StreamConfiguration = {
    var configuration = NIOHTTP2Handler.StreamConfiguration()
    configuration.targetWindowSize = 1 << 20
    configuration.outboundBufferSizeHighWatermark = 256 << 10
    configuration.outboundBufferSizeLowWatermark = 64 << 10
    return configuration
  }()

  init(
    table: ServiceTable, metrics: TrafficMetrics, address: UInt32, port: UInt16, mark: UInt32,
    loop: any EventLoop
  ) {
    self.table = table
    self.metrics = metrics
    self.address = address
    self.port = port
    self.mark = mark
    self.loop = loop
  }

  /// Sets up HTTP/2 on an accepted client connection; each stream gets an ``HTTP2StreamForwarder``.
  static func serve(
    _ client: any Channel, table: ServiceTable, metrics: TrafficMetrics, address: UInt32, port: UInt16,
    mark: UInt32
  ) throws {
    let session = HTTP2Session(
      table: table, metrics: metrics, address: address, port: port, mark: mark, loop: client.eventLoop)
    session.client = client
    let bound = NIOLoopBound(session, eventLoop: client.eventLoop)
    _ = try client.pipeline.syncOperations.configureHTTP2Pipeline(
      mode: .server, connectionConfiguration: Self.connection, streamConfiguration: Self.stream
    ) { stream in
      stream.eventLoop.makeCompletedFuture {
        try stream.pipeline.syncOperations.addHandler(HTTP2StreamForwarder(session: bound.value))
      }
    }
    try client.pipeline.syncOperations.addHandler(SessionCloser(session: session))
  }

  /// Decides where a new stream goes.
  func decide(_ headers: HPACKHeaders, source: EndpointAddress?) -> OutboundDecision {
    let request = RequestView(
      method: headers.first(name: ":method") ?? "GET", target: headers.first(name: ":path") ?? "/",
      header: { name in
        let values = headers[name]
        return values.isEmpty ? nil : values.joined(separator: name == "cookie" ? "; " : ", ")
      })
    return self.table.decide(
      address: self.address, port: self.port, request: request, source: source,
      now: UInt64(MonotonicClock.nanoseconds()))
  }

  /// Ends a stream's upstream pick with the answer's status (nil: none came).
  func finish(_ upstream: Upstream, success: Bool, status: Int?) {
    self.table.finish(
      upstream, now: UInt64(MonotonicClock.nanoseconds()), success: success,
      outcome: RequestOutcome(status: status))
  }

  /// Opens a stream to `endpoint` (connecting first when this session has no connection there)
  /// whose pipeline `initializer` sets up.
  /// A new upstream connection would pass a circuit breaker limit of `service`.
  struct Overflow: Error {
    var limit: CircuitBreaker.Limit
  }

  func openStream(
    to endpoint: EndpointAddress, service: String, _ initializer: @escaping NIOChannelInitializer
  ) -> EventLoopFuture<any Channel> {
    guard !self.closed else { return self.loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
    let multiplexer: EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>
    if let open = self.upstreams[endpoint] {
      multiplexer = open
    } else {
      // A new connection: within the service's connection and pending-request limits.
      if let limit = self.table.hold(.maxConnections, service: service) {
        return self.loop.makeFailedFuture(Overflow(limit: limit))
      }
      if let limit = self.table.hold(.maxPendingRequests, service: service) {
        self.table.release(.maxConnections, service: service)
        return self.loop.makeFailedFuture(Overflow(limit: limit))
      }
      multiplexer = self.connect(to: endpoint, service: service)
    }
    return multiplexer.flatMap { $0.createStreamChannel(initializer) }
  }

  private func connect(to endpoint: EndpointAddress, service: String)
    -> EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer>
  {
    let me = NIOLoopBound(self, eventLoop: self.loop)
    let table = self.table
    let future = ClientBootstrap(group: self.loop)
      .channelOption(
        ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SocketOptionName(SidecarProxy.soMark)),
        value: SocketOptionValue(Int32(bitPattern: self.mark))
      )
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      .connectTimeout(.seconds(5))
      .connect(to: endpoint.socketAddress)
      .always { result in
        table.release(.maxPendingRequests, service: service)
        switch result {
        case .success(let channel):
          channel.closeFuture.whenComplete { _ in table.release(.maxConnections, service: service) }
        case .failure: table.release(.maxConnections, service: service)
        }
      }
      .flatMapThrowing { channel -> NIOHTTP2Handler.StreamMultiplexer in
        let session = me.value
        session.upstreamChannels.append(channel)
        if session.closed { channel.close(promise: nil) }
        channel.closeFuture.assumeIsolated().whenComplete { _ in
          let session = me.value
          session.upstreams[endpoint] = nil
          session.upstreamChannels.removeAll { $0 === channel }
        }
        return try channel.pipeline.syncOperations.configureHTTP2Pipeline(
          mode: .client, connectionConfiguration: Self.connection, streamConfiguration: Self.stream
        ) { pushed in pushed.close() }
      }
    self.upstreams[endpoint] = future
    future.assumeIsolated().whenFailure { _ in me.value.upstreams[endpoint] = nil }
    return future
  }

  /// A client stream began.
  func streamOpened(_ id: HTTP2StreamID?) {
    self.activeStreams += 1
    if let id, id > self.lastStreamID { self.lastStreamID = id }
  }

  /// A client stream ended; a draining connection closes after its last one.
  func streamClosed() {
    self.activeStreams -= 1
    if self.draining && self.activeStreams == 0 { self.client?.close(promise: nil) }
  }

  /// Drain: tell the client (GOAWAY, no error) that no stream after the last one seen will be
  /// served, finish the open ones, then close.
  func drain(_ context: ChannelHandlerContext) {
    guard !self.draining else { return }
    self.draining = true
    let goAway = HTTP2Frame(
      streamID: .rootStream,
      payload: .goAway(lastStreamID: self.lastStreamID, errorCode: .noError, opaqueData: nil))
    context.writeAndFlush(NIOAny(goAway), promise: nil)
    if self.activeStreams == 0 { context.close(promise: nil) }
  }

  /// The client connection closed: close every upstream connection.
  func close() {
    self.closed = true
    for channel in self.upstreamChannels { channel.close(promise: nil) }
    self.upstreamChannels = []
    self.upstreams = [:]
  }
}

/// Drains a session when the proxy shuts down, and closes its upstream connections when its
/// client connection closes.
private final class SessionCloser: ChannelInboundHandler {
  typealias InboundIn = HTTP2Frame

  private let session: HTTP2Session

  init(session: HTTP2Session) { self.session = session }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is ChannelShouldQuiesceEvent {
      self.session.drain(context)
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.session.close()
    context.fireChannelInactive()
  }
}

/// One client stream: on its HEADERS, picks an endpoint and opens an upstream stream; then
/// relays frames both ways with backpressure (reads pause while the other stream's window or
/// buffer is full). Until the upstream stream is open, frames wait here.
final class HTTP2StreamForwarder: ChannelDuplexHandler {
  typealias InboundIn = HTTP2Frame.FramePayload
  typealias OutboundIn = HTTP2Frame.FramePayload
  typealias OutboundOut = HTTP2Frame.FramePayload

  private let session: HTTP2Session
  private var context: ChannelHandlerContext?
  private var upstream: Upstream?
  private var partner: HTTP2UpstreamStream?
  private var waiting: [HTTP2Frame.FramePayload] = []
  private var gate = ReadGate()
  private var deciding = true
  private var status = 0
  private var responseEnded = false
  private var finished = false
  private var service = "unknown"
  private var started = UInt64(MonotonicClock.nanoseconds())
  private var sent = 0
  private var received = 0

  init(session: HTTP2Session) { self.session = session }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    self.session.streamOpened(try? context.channel.syncOptions?.getOption(HTTP2StreamChannelOptions.streamID))
  }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let frame = self.unwrapInboundIn(data)
    guard frame.isRelayed else { return }
    if case .data(let data) = frame { self.sent += data.data.readableBytes }
    if let partner {
      partner.write(frame)
      return
    }
    guard !self.responseEnded else { return }  // answered already: the rest of the request is dropped
    self.waiting.append(frame)
    guard self.deciding, case .headers(let headers) = frame else { return }
    self.deciding = false
    let source = context.channel.parent?.remoteAddress.flatMap(EndpointAddress.init(socketAddress:))
    switch self.session.decide(headers.headers, source: source) {
    case .service(let upstream):
      self.upstream = upstream
      self.service = upstream.service
      let me = NIOLoopBound(self, eventLoop: context.eventLoop)
      let open = {
        me.value.session.openStream(to: upstream.endpoint, service: upstream.service) { stream in
          stream.eventLoop.makeCompletedFuture {
            let partner = HTTP2UpstreamStream(forwarder: me.value)
            try stream.pipeline.syncOperations.addHandler(partner)
          }
        }.assumeIsolated().whenFailure { error in
          if let overflow = error as? HTTP2Session.Overflow {
            me.value.answer(
              status: 503, message: "\(upstream.service): circuit breaker \(overflow.limit.rawValue) reached",
              overflow: overflow.limit)
          } else {
            me.value.answer(status: 503, message: "could not reach \(upstream.endpoint)")
          }
        }
      }
      if upstream.delayNanos > 0 {
        self.session.metrics.decided("faults", upstream.service, kind: "delay")
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(upstream.delayNanos))) {
          open()
        }
      } else {
        open()
      }
    case .noEndpoint(let service):
      self.service = service
      self.answer(status: 503, message: "service \(service) has no healthy endpoint")
    case .abort(let service, let status):
      self.service = service
      self.session.metrics.decided("faults", service, kind: "abort")
      self.answer(status: status, message: "fault injected by the route of \(service)", fault: true)
    case .overflow(let service, let limit):
      self.service = service
      self.answer(
        status: 503, message: "\(service): circuit breaker \(limit.rawValue) reached", overflow: limit)
    case .passthrough:
      self.answer(status: 502, message: "no such service")
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    self.partner?.flush()
    context.fireChannelReadComplete()
  }

  func read(context: ChannelHandlerContext) {
    if self.gate.admits(partnerWritable: self.partner?.isWritable ?? true) { context.read() }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { self.partner?.resumeRead() }
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.complete(success: self.responseEnded)
    // The client reset or the connection went: the upstream stream goes too.
    self.partner?.close()
    self.session.streamClosed()
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  // MARK: - Called by the upstream stream

  /// The upstream stream is open: send what waited.
  fileprivate func attached(_ partner: HTTP2UpstreamStream) {
    self.partner = partner
    for frame in self.waiting { partner.write(frame) }
    self.waiting = []
    partner.flush()
  }

  /// A frame of the response.
  fileprivate func write(_ frame: HTTP2Frame.FramePayload) {
    guard let context else { return }
    switch frame {
    case .headers(let headers):
      if self.status == 0, let status = headers.headers.first(name: ":status").flatMap({ Int($0) }),
        status >= 200
      {
        self.status = status
      }
      if headers.endStream { self.responseEnded = true }
    case .data(let data):
      self.received += data.data.readableBytes
      if data.endStream { self.responseEnded = true }
    default:
      break
    }
    context.write(self.wrapOutboundOut(frame), promise: nil)
    if self.responseEnded {
      context.flush()
      self.complete(success: self.status < 500)
    }
  }

  fileprivate func flush() { self.context?.flush() }

  fileprivate var isWritable: Bool { self.context?.channel.isWritable ?? false }

  fileprivate func resumeRead() {
    if self.gate.release() { self.context?.read() }
  }

  /// The upstream stream closed. Once the response is complete the client stream finishes on
  /// its own; otherwise it is reset.
  fileprivate func upstreamClosed() {
    self.partner = nil
    guard !self.responseEnded else { return }
    self.complete(success: false)
    if self.status == 0 {
      self.answer(status: 502, message: "the endpoint reset the stream")
    } else {
      self.context?.close(promise: nil)
    }
  }

  // MARK: - Helpers

  private func complete(success: Bool) {
    guard !self.finished else { return }
    self.finished = true
    if let upstream = self.upstream {
      self.session.finish(upstream, success: success, status: self.status == 0 ? nil : self.status)
    }
    self.session.metrics.request(
      to: self.service, protocol: "http2", status: self.status == 0 ? nil : self.status,
      nanoseconds: UInt64(MonotonicClock.nanoseconds()) &- self.started, sent: self.sent,
      received: self.received)
  }

  /// Answers the stream from the proxy itself.
  private func answer(
    status: Int, message: String, fault: Bool = false, overflow: CircuitBreaker.Limit? = nil
  ) {
    guard let context else { return }
    self.waiting = []
    self.status = status
    self.complete(success: false)
    self.responseEnded = true
    var headers = HPACKHeaders([
      (":status", String(status)), ("content-type", "text/plain"),
      ("x-weft-proxy", fault ? "fault" : "error"),
    ])
    if let overflow { headers.add(name: "x-weft-overflow", value: overflow.rawValue) }
    context.write(self.wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
    let body = context.channel.allocator.buffer(string: message + "\n")
    context.writeAndFlush(
      self.wrapOutboundOut(.data(.init(data: .byteBuffer(body), endStream: true))), promise: nil)
  }
}

/// The upstream side of one relayed stream.
final class HTTP2UpstreamStream: ChannelDuplexHandler {
  typealias InboundIn = HTTP2Frame.FramePayload
  typealias OutboundIn = HTTP2Frame.FramePayload
  typealias OutboundOut = HTTP2Frame.FramePayload

  private var forwarder: HTTP2StreamForwarder?
  private var context: ChannelHandlerContext?
  private var gate = ReadGate()

  init(forwarder: HTTP2StreamForwarder) { self.forwarder = forwarder }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    self.forwarder?.attached(self)
  }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let frame = self.unwrapInboundIn(data)
    if frame.isRelayed { self.forwarder?.write(frame) }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    self.forwarder?.flush()
    context.fireChannelReadComplete()
  }

  func read(context: ChannelHandlerContext) {
    if self.gate.admits(partnerWritable: self.forwarder?.isWritable ?? true) { context.read() }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { self.forwarder?.resumeRead() }
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    let forwarder = self.forwarder
    self.forwarder = nil
    forwarder?.upstreamClosed()
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  // MARK: - Called by the client stream

  fileprivate func write(_ frame: HTTP2Frame.FramePayload) {
    self.context?.write(self.wrapOutboundOut(frame), promise: nil)
  }

  fileprivate func flush() { self.context?.flush() }

  fileprivate var isWritable: Bool { self.context?.channel.isWritable ?? false }

  fileprivate func resumeRead() {
    if self.gate.release() { self.context?.read() }
  }

  fileprivate func close() {
    self.forwarder = nil
    self.context?.close(promise: nil)
  }
}

extension HTTP2Frame.FramePayload {
  /// HEADERS (with trailers) and DATA carry the exchange and pass to the other stream; window
  /// updates, priority and resets belong to each hop's own stream state (a reset closes the
  /// stream, which the handlers see as the channel going inactive).
  var isRelayed: Bool {
    switch self {
    case .headers, .data: return true
    default: return false
    }
  }
}
