import Glibc
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import WeftIdentity

/// Proxies one client connection to an `http2` or `grpc` service stream by stream: every
/// stream the client opens gets its own balancer pick (and route rule), and is relayed as frames
/// onto a stream of an HTTP/2 connection to that endpoint, kept for the client connection's
/// life and shared by its streams. Frames pass unchanged, so trailers (gRPC's status) and
/// streaming in both directions work; a stream that fails is reset alone, the connection and
/// its other streams go on.
final class HTTP2Session {
  private let table: ServiceTable
  let metrics: TrafficMetrics
  /// Serving the workload's own listener (inbound): each stream is held to the access policies
  /// (by method, path and headers) and local rate limits of the service it calls, and goes to
  /// the workload; no balancing, retries or circuit breaking, no outbound figures.
  let inbound: Bool
  /// Inbound: the caller's verified identity, and the port's service when the caller names none.
  private let peer: SPIFFEID?
  private let service: String
  private let address: UInt32
  private let port: UInt16
  private let mark: UInt32
  private let tls: MeshTLS
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
    tls: MeshTLS = MeshTLS(), loop: any EventLoop, inbound: Bool = false, peer: SPIFFEID? = nil,
    service: String = "unknown"
  ) {
    self.inbound = inbound
    self.peer = peer
    self.service = service
    self.tls = tls
    self.table = table
    self.metrics = metrics
    self.address = address
    self.port = port
    self.mark = mark
    self.loop = loop
  }

  /// Sets up HTTP/2 on an accepted client connection; each stream gets an ``HTTP2StreamForwarder``.
  /// `inbound` serves the workload's own listener for a caller `peer` (nil: plaintext) of
  /// `service` (see ``inbound``).
  static func serve(
    _ client: any Channel, table: ServiceTable, metrics: TrafficMetrics, address: UInt32, port: UInt16,
    mark: UInt32, tls: MeshTLS = MeshTLS(), inbound: Bool = false, peer: SPIFFEID? = nil,
    service: String = "unknown"
  ) throws {
    let session = HTTP2Session(
      table: table, metrics: metrics, address: address, port: port, mark: mark, tls: tls,
      loop: client.eventLoop, inbound: inbound, peer: peer, service: service)
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

  private static func request(_ headers: HPACKHeaders) -> RequestView {
    RequestView(
      method: headers.first(name: ":method") ?? "GET", target: headers.first(name: ":path") ?? "/",
      header: { name in
        let values = headers[name]
        return values.isEmpty ? nil : values.joined(separator: name == "cookie" ? "; " : ", ")
      })
  }

  /// Holds a new inbound stream to the access policies and local rate limits
  /// (``InboundAdmission``).
  func admitInbound(_ headers: HPACKHeaders) -> InboundAdmission {
    InboundAdmission.check(
      table: self.table, metrics: self.metrics, address: self.address, port: self.port, peer: self.peer,
      named: headers.first(name: HTTPForwarder.serviceHeader), fallback: self.service, protocol: .http2,
      request: Self.request(headers), now: UInt64(MonotonicClock.nanoseconds()))
  }

  /// Decides where a new stream goes.
  func decide(_ headers: HPACKHeaders, source: EndpointAddress?) -> OutboundDecision {
    let request = Self.request(headers)
    return self.table.decide(
      address: self.address, port: self.port, request: request, source: source,
      now: UInt64(MonotonicClock.nanoseconds()))
  }

  /// Another attempt for a stream whose attempt on `previous` failed (nil: none granted).
  func retry(_ previous: Upstream, avoiding tried: Set<UInt32>) -> Upstream? {
    self.table.retry(previous, avoiding: tried, now: UInt64(MonotonicClock.nanoseconds()))
  }

  /// Ends a stream's upstream pick with the answer's status (nil: none came); `superseded`
  /// when a retry takes over.
  func finish(_ upstream: Upstream, success: Bool, status: Int?, superseded: Bool = false) {
    guard !self.inbound else { return }  // nothing was picked or held on that side
    self.table.finish(
      upstream, now: UInt64(MonotonicClock.nanoseconds()), success: success,
      outcome: RequestOutcome(status: status), superseded: superseded)
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
    } else if self.inbound {
      multiplexer = self.connect(to: endpoint, service: service)
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
    let limited = !self.inbound
    // A meshed endpoint is spoken to over mutual TLS (the workload itself, inbound, is not).
    let secure =
      self.inbound
      ? nil
      : self.table.peerIdentity(service: service, address: endpoint.ipv4).flatMap { expected in
        (try? self.tls.clientHandler(carries: .http2, expecting: expected)).flatMap { $0 }
      }.map { NIOLoopBound($0, eventLoop: self.loop) }
    let future = ClientBootstrap(group: self.loop)
      .channelOption(
        ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SocketOptionName(SidecarProxy.soMark)),
        value: SocketOptionValue(Int32(bitPattern: self.mark))
      )
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      .connectTimeout(.seconds(5))
      .connect(to: endpoint.socketAddress)
      .always { result in
        guard limited else { return }
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
        if let secure { try channel.pipeline.syncOperations.addHandler(secure.value) }
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
///
/// With a route's retries, a complete request (up to the body limit) is kept, and an attempt
/// that fails before its answer began (connect failure, reset, refused stream, a retriable
/// status, per-try timeout) is replayed on a new stream to another endpoint after a backoff;
/// the failed answer is never seen by the client. The route's timeout (or the client's
/// deadline header, the tighter) answers 504 when no answer has begun by then.
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
  /// The client's END_STREAM came, and the endpoint's was relayed: the upstream stream is over
  /// both ways and closes by itself.
  private var clientEnded = false
  private var upstreamEnded = false
  private var finished = false
  private var service = "unknown"
  private var started = UInt64(MonotonicClock.nanoseconds())
  private var sent = 0
  private var received = 0
  /// The request's frames kept for another attempt (nil: it will have none), their body bytes,
  /// and whether the client has sent all of it.
  private var kept: [HTTP2Frame.FramePayload]?
  private var keptBytes = 0
  private var requestEnded = false
  private var method = "GET"
  /// The attempt's number (1 for the first) and the endpoints tried.
  private var attempt = 1
  private var tried: Set<UInt32> = []
  /// The route's timeout or the client's deadline, the tighter.
  private var timeoutNanos: UInt64?
  /// How the upstream stream was reset, if it was.
  fileprivate var resetCode: HTTP2ErrorCode?

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
    if frame.endsStream { self.clientEnded = true }
    self.keep(frame)
    if let partner {
      partner.write(frame)
      return
    }
    guard !self.responseEnded else { return }  // answered already: the rest of the request is dropped
    self.waiting.append(frame)
    guard self.deciding, case .headers(let headers) = frame else { return }
    self.deciding = false
    let decision: OutboundDecision
    if self.session.inbound {
      switch self.session.admitInbound(headers.headers) {
      case .admitted(let upstream):
        decision = .service(upstream)
      case .refused(let service, let status, let message, let marker, let retryAfter):
        self.service = service
        self.answer(status: status, message: message, marker: marker, retryAfter: retryAfter)
        return
      }
    } else {
      let source = context.channel.parent?.remoteAddress.flatMap(EndpointAddress.init(socketAddress:))
      decision = self.session.decide(headers.headers, source: source)
    }
    switch decision {
    case .service(let upstream):
      self.upstream = upstream
      self.service = upstream.service
      self.method = headers.headers.first(name: ":method") ?? "GET"
      self.tried = [upstream.endpoint.ipv4]
      self.timeoutNanos = Deadline.tighter(
        upstream.timeoutNanos,
        Deadline.milliseconds(headers.headers.first(name: Deadline.header)).map { $0 * 1_000_000 })
      if let retries = upstream.retries, retries.effectiveAttempts > 1 {
        self.kept = []
        self.keep(frame)
      }
      self.armOverallTimer()
      if upstream.delayNanos > 0 {
        self.session.metrics.decided("faults", upstream.service, kind: "delay")
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(upstream.delayNanos))) {
          me.value.open(upstream)
        }
      } else {
        self.open(upstream)
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
    // The client reset or the connection went: the upstream stream goes too. One that ended
    // both ways is left to close by itself: closing it would reset it (RST_STREAM CANCEL), and
    // an endpoint's rapid-reset guard counts those against the whole connection (NIO's closes
    // it after 200 in 30 s).
    if self.clientEnded && self.upstreamEnded {
      self.partner?.detach()
    } else {
      self.partner?.close()
    }
    self.session.streamClosed()
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  // MARK: - Attempts

  /// Opens a stream to `upstream`'s endpoint for the current attempt.
  private func open(_ upstream: Upstream) {
    guard let context else { return }
    let me = NIOLoopBound(self, eventLoop: context.eventLoop)
    let attempt = self.attempt
    self.armPerTryTimer()
    self.session.openStream(to: upstream.endpoint, service: upstream.service) { stream in
      stream.eventLoop.makeCompletedFuture {
        let partner = HTTP2UpstreamStream(forwarder: me.value, attempt: attempt)
        try stream.pipeline.syncOperations.addHandler(partner)
      }
    }.assumeIsolated().whenFailure { error in
      let forwarder = me.value
      guard forwarder.attempt == attempt, !forwarder.responseEnded else { return }
      if let overflow = error as? HTTP2Session.Overflow {
        forwarder.answer(
          status: 503, message: "\(upstream.service): circuit breaker \(overflow.limit.rawValue) reached",
          overflow: overflow.limit)
      } else if !forwarder.tryAgain(connected: false) {
        forwarder.answer(status: 503, message: "could not reach \(upstream.endpoint)")
      }
    }
  }

  /// Keeps a request frame for another attempt while the request may have one.
  private func keep(_ frame: HTTP2Frame.FramePayload) {
    guard self.kept != nil, let retries = self.upstream?.retries else { return }
    switch frame {
    case .headers(let headers): if headers.endStream { self.requestEnded = true }
    case .data(let data):
      self.keptBytes += data.data.readableBytes
      if data.endStream { self.requestEnded = true }
    default: return
    }
    if self.keptBytes > retries.effectiveMaxBodyBytes {
      self.kept = nil  // too large to keep: this stream is not retried
    } else {
      self.kept!.append(frame)
    }
  }

  /// After a failed attempt with no answer passed on (`status` when the endpoint answered one
  /// that is retriable): starts the next attempt on another stream, if the policy, the request
  /// and the budget allow; true when it did.
  private func tryAgain(connected: Bool, timedOut: Bool = false, status: Int? = nil) -> Bool {
    guard let context, let upstream = self.upstream, let retries = upstream.retries, let kept = self.kept,
      self.requestEnded, self.attempt < retries.effectiveAttempts
    else { return false }
    let refused = self.resetCode == .refusedStream
    let worth =
      status.map { retries.retries(status: $0) }
      ?? retries.retriesFailure(connected: connected, timedOut: timedOut, refused: refused)
    guard worth, refused || retries.allows(method: self.method),
      let next = self.session.retry(upstream, avoiding: self.tried)
    else { return false }
    self.session.finish(upstream, success: false, status: status, superseded: true)
    if let partner = self.partner {
      self.partner = nil
      partner.close()
    }
    self.upstream = next
    self.attempt += 1
    self.tried.insert(next.endpoint.ipv4)
    self.status = 0
    self.resetCode = nil
    self.waiting = kept
    self.session.metrics.retried(next.service)
    var random = SystemRandomNumberGenerator()
    let wait = (retries.backoff).delay(attempt: self.attempt - 1, using: &random)
    let me = NIOLoopBound(self, eventLoop: context.eventLoop)
    let attempt = self.attempt
    context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(wait))) {
      let forwarder = me.value
      guard forwarder.attempt == attempt, !forwarder.responseEnded else { return }
      forwarder.open(next)
    }
    return true
  }

  /// Gives up on an attempt that has not begun answering within the per-try timeout.
  private func armPerTryTimer() {
    guard let context, let perTry = self.upstream?.retries?.perTryTimeoutMilliseconds else { return }
    let me = NIOLoopBound(self, eventLoop: context.eventLoop)
    let attempt = self.attempt
    context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(perTry))) {
      let forwarder = me.value
      guard forwarder.attempt == attempt, forwarder.status == 0, !forwarder.responseEnded else { return }
      if forwarder.tryAgain(connected: true, timedOut: true) { return }
      forwarder.session.metrics.decided("timeouts", forwarder.service, kind: "per-try")
      forwarder.partner?.close()
      forwarder.partner = nil
      forwarder.answer(status: 504, message: "the endpoint did not answer in time")
    }
  }

  /// The stream's overall timeout: 504 when no answer has begun, a reset when one has.
  private func armOverallTimer() {
    guard let context, let timeout = self.timeoutNanos else { return }
    let me = NIOLoopBound(self, eventLoop: context.eventLoop)
    context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(timeout))) {
      let forwarder = me.value
      guard !forwarder.responseEnded, !forwarder.finished else { return }
      forwarder.session.metrics.decided("timeouts", forwarder.service, kind: "overall")
      forwarder.attempt += 1  // whatever attempt is under way is abandoned
      forwarder.partner?.close()
      forwarder.partner = nil
      if forwarder.status == 0 {
        forwarder.answer(status: 504, message: "upstream request timeout")
      } else {
        forwarder.complete(success: false)
        forwarder.context?.close(promise: nil)
      }
    }
  }

  // MARK: - Called by the upstream stream

  /// The upstream stream is open: send what waited, the request's HEADERS telling the next hop
  /// how long this attempt may take.
  fileprivate func attached(_ partner: HTTP2UpstreamStream) {
    guard partner.attempt == self.attempt, !self.responseEnded else {
      partner.close()  // an abandoned attempt's stream, opened late
      return
    }
    self.partner = partner
    let left = self.attemptDeadline()
    for frame in self.waiting {
      if case .headers(var headers) = frame, headers.headers.first(name: ":method") != nil, let left {
        headers.headers.replaceOrAdd(name: Deadline.header, value: Deadline.value(nanoseconds: left))
        partner.write(.headers(headers))
      } else {
        partner.write(frame)
      }
    }
    self.waiting = []
    partner.flush()
  }

  /// The per-try timeout or what is left of the overall one, the tighter.
  private func attemptDeadline() -> UInt64? {
    let now = UInt64(MonotonicClock.nanoseconds())
    let left = self.timeoutNanos.map { self.started + $0 > now ? self.started + $0 - now : 0 }
    return Deadline.tighter(
      left, self.upstream?.retries?.perTryTimeoutMilliseconds.map { UInt64($0) * 1_000_000 })
  }

  /// A frame of the response.
  fileprivate func write(_ frame: HTTP2Frame.FramePayload) {
    guard let context else { return }
    switch frame {
    case .headers(let headers):
      if self.status == 0, let status = headers.headers.first(name: ":status").flatMap({ Int($0) }),
        status >= 200
      {
        // A retriable answer is dropped (its stream reset) and the request tried again.
        if self.tryAgain(connected: true, status: status) { return }
        self.status = status
      }
      if headers.endStream { self.responseEnded = true }
    case .data(let data):
      self.received += data.data.readableBytes
      if data.endStream { self.responseEnded = true }
    default:
      break
    }
    if frame.endsStream { self.upstreamEnded = true }
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
    if self.status == 0, self.tryAgain(connected: true) { return }
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
    guard !self.session.inbound else { return }  // counted by the caller's sidecar
    self.session.metrics.request(
      to: self.service, protocol: "http2", status: self.status == 0 ? nil : self.status,
      nanoseconds: UInt64(MonotonicClock.nanoseconds()) &- self.started, sent: self.sent,
      received: self.received)
  }

  /// Answers the stream from the proxy itself.
  private func answer(
    status: Int, message: String, fault: Bool = false, overflow: CircuitBreaker.Limit? = nil,
    marker: String? = nil, retryAfter: Int? = nil
  ) {
    guard let context else { return }
    self.waiting = []
    self.status = status
    self.complete(success: false)
    self.responseEnded = true
    var headers = HPACKHeaders([
      (":status", String(status)), ("content-type", "text/plain"),
      ("x-weft-proxy", marker ?? (fault ? "fault" : "error")),
    ])
    if let overflow { headers.add(name: "x-weft-overflow", value: overflow.rawValue) }
    if let retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
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
  /// The client stream's attempt this stream serves.
  fileprivate let attempt: Int

  init(forwarder: HTTP2StreamForwarder, attempt: Int) {
    self.forwarder = forwarder
    self.attempt = attempt
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    self.forwarder?.attached(self)
  }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let frame = self.unwrapInboundIn(data)
    if case .rstStream(let code) = frame { self.forwarder?.resetCode = code }
    if frame.isRelayed { self.forwarder?.write(frame) }
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    // How the endpoint ended the stream (REFUSED_STREAM can be retried whatever the method).
    if let closed = event as? StreamClosedEvent, let reason = closed.reason {
      self.forwarder?.resetCode = reason
    }
    context.fireUserInboundEventTriggered(event)
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

  /// Forgets the client stream, leaving this one to close by itself.
  fileprivate func detach() {
    self.forwarder = nil
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

  /// Whether the frame ends its sender's side of the stream.
  var endsStream: Bool {
    switch self {
    case .headers(let headers): return headers.endStream
    case .data(let data): return data.endStream
    default: return false
    }
  }
}
