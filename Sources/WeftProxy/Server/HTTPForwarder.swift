import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import WeftIdentity
import WeftWire

/// Proxies one client connection to an `http` service request by request: each request gets its
/// own balancer pick, so a keep-alive client is spread over the endpoints like one that
/// reconnects. Upstream connections are kept per endpoint for the client connection's life
/// and reused. Requests are taken one at a time (NIO's pipelining handler holds the next until the
/// response is written). Requests that could smuggle a second one past a peer (both
/// Content-Length and Transfer-Encoding, or conflicting Content-Lengths) get a 400 and the
/// connection is closed. An upgrade (WebSocket) goes to an endpoint like any request; if it
/// answers 101, HTTP is taken off both connections and they become a byte tunnel
/// (``HTTPPipeline/switchToTunnel(client:upstream:)``), else its answer is passed on and the
/// connection closed.
///
/// On the inbound side (`inbound`) the same machinery passes requests to the workload itself,
/// after the service's local rate limits, and bounds each by the deadline its caller's sidecar
/// sent (``Deadline``); there is no balancing, retrying or circuit breaking there.
final class HTTPForwarder: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let table: ServiceTable
  private let metrics: TrafficMetrics
  private let draining: DrainFlag
  /// The service behind the address and port (for figures about requests answered here).
  private let service: String
  private let address: UInt32
  private let port: UInt16
  private let mark: UInt32
  /// Serving the workload's own listener (inbound) rather than its calls out.
  private let inbound: Bool
  /// Mutual TLS towards meshed endpoints.
  private let tls: MeshTLS
  /// Inbound: the caller's verified identity (nil for plaintext), for the access policies.
  private let peer: SPIFFEID?
  private var context: ChannelHandlerContext?
  private var upstreams: [EndpointAddress: any Channel] = [:]
  /// The request in flight, ended by ``endExchange()`` (not by an observer on this property,
  /// which would turn every in-place change of a field into a copy of the whole exchange).
  private var exchange: Exchange?
  /// Parts of requests the client sent before the answer to the one in flight (HTTP/1.1
  /// pipelining), held in order, with reading stopped until they have gone on. Without NIO's
  /// pipelining handler, a connection whose client waits for each answer (nearly all of them)
  /// keeps reading on: no read interest to take back and give again per request.
  private var pipelined: [HTTPServerRequestPart] = []
  private var replayScheduled = false
  /// A drain asked this connection to close after the answer in flight.
  private var quiescing = false
  /// The client half-closed: no request comes after those read already.
  private var clientFinished = false
  /// Whether another request waits its turn (the last one before a half-close is answered with
  /// Connection: close).
  private var requestQueued: Bool {
    self.pipelined.contains { if case .head = $0 { true } else { false } }
  }
  /// Swallow the rest of a request already answered (an error answer before its body ended).
  private var discarding = false

  /// One request in flight.
  private struct Exchange {
    var upstream: Upstream
    var channel: (any Channel)?
    var pending: [HTTPClientRequestPart] = []
    var keepAlive: Bool
    var version: HTTPVersion
    var responding = false
    var status: UInt = 0
    /// The request asks for an upgrade.
    var upgrade = false
    /// When it started, and its body bytes each way.
    var started = UInt64(MonotonicClock.nanoseconds())
    var sent = 0
    var received = 0
    /// Which request on this connection (timers check it is still theirs).
    var serial: UInt64 = 0
    /// The request's method (retries are for idempotent ones).
    var method = "GET"
    /// The request kept for another attempt, while it may have one (nil: it may not).
    var kept: [HTTPClientRequestPart]?
    var keptBytes = 0
    /// The client has sent all of the request.
    var requestEnded = false
    /// This attempt's number (1 for the first) and the endpoints tried.
    var attempt = 1
    var tried: Set<UInt32> = []
    /// The next attempt, already granted, while this attempt's failed answer is swallowed.
    var next: Upstream?
    /// How long the request may take in all: the route's timeout or the deadline the client's
    /// request carried, the tighter (nil: unbounded).
    var timeoutNanos: UInt64?
  }

  private var serial: UInt64 = 0

  /// Ends the request in flight; requests the client pipelined meanwhile go on.
  private func endExchange() {
    self.exchange = nil
    if !self.pipelined.isEmpty { self.replayPipelined() }
  }

  /// The header in which the calling sidecar names the service it sent a request to, so that the
  /// endpoint's sidecar applies that service's limits when several services share the port.
  static let serviceHeader = "x-weft-service"

  init(
    table: ServiceTable, metrics: TrafficMetrics, draining: DrainFlag, service: String, address: UInt32,
    port: UInt16,
    mark: UInt32, inbound: Bool = false, tls: MeshTLS = MeshTLS(), peer: SPIFFEID? = nil
  ) {
    self.peer = peer
    self.inbound = inbound
    self.tls = tls
    self.table = table
    self.metrics = metrics
    self.draining = draining
    self.service = service
    self.address = address
    self.port = port
    self.mark = mark
  }

  func handlerAdded(context: ChannelHandlerContext) { self.context = context }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelInactive(context: ChannelHandlerContext) {
    if let exchange = self.exchange { self.finish(exchange, success: false) }
    self.endExchange()
    for channel in self.upstreams.values { channel.close(promise: nil) }
    self.upstreams = [:]
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A request NIO's parser refused was answered 400 by its error handler before us.
    if error is HTTPParserError, self.exchange == nil {
      self.metrics.request(to: self.service, protocol: "http", status: 400, nanoseconds: 0)
    }
    context.close(promise: nil)
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let event = event as? ChannelEvent, case .inputClosed = event {
      // The client sent all it will: what it asked is answered, then the connection closes.
      self.clientFinished = true
      if self.exchange == nil, self.pipelined.isEmpty {
        context.close(promise: nil)
      } else if !self.requestQueued {
        self.exchange?.keepAlive = false
      }
      return
    }
    guard event is ChannelShouldQuiesceEvent else {
      context.fireUserInboundEventTriggered(event)
      return
    }
    // A drain: an idle connection closes now, a busy one after its answer.
    self.quiescing = true
    self.pipelined = []
    if self.exchange == nil {
      context.close(promise: nil)
    } else {
      self.exchange?.keepAlive = false
    }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let part = self.unwrapInboundIn(data)
    if !self.pipelined.isEmpty || self.exchange?.requestEnded == true {
      // The next request, sent before this one's answer: it waits its turn.
      if self.pipelined.isEmpty { _ = context.channel.setOption(.autoRead, value: false) }
      self.pipelined.append(part)
      return
    }
    self.handle(part, context: context)
  }

  /// Takes the pipelined requests on, one at a time, once no request is in flight.
  private func replayPipelined() {
    guard !self.replayScheduled, let context else { return }
    self.replayScheduled = true
    let me = NIOLoopBound(self, eventLoop: context.eventLoop)
    context.eventLoop.assumeIsolated().execute {
      let forwarder = me.value
      forwarder.replayScheduled = false
      guard let context = forwarder.context else { return }
      while forwarder.exchange?.requestEnded != true, !forwarder.pipelined.isEmpty {
        forwarder.handle(forwarder.pipelined.removeFirst(), context: context)
      }
      if forwarder.pipelined.isEmpty, !forwarder.quiescing {
        _ = context.channel.setOption(.autoRead, value: true)
      }
    }
  }

  private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
    switch part {
    case .head(var head):
      self.discarding = false
      if let problem = HTTPRequestCheck.problem(head) {
        self.respond(status: .badRequest, message: problem, version: head.version, keepAlive: false)
        return
      }
      let upgrade = head.headers.contains(name: "upgrade")
      let keepAlive =
        head.isKeepAlive && !upgrade && !self.draining.isSet && !self.quiescing
        && !(self.clientFinished && !self.requestQueued)
      let now = UInt64(MonotonicClock.nanoseconds())
      let headers = head.headers
      let request = RequestView(
        method: head.method.rawValue, target: head.uri,
        header: { name in
          let values = headers[name]
          return values.isEmpty ? nil : values.joined(separator: name == "cookie" ? "; " : ", ")
        })
      let decision: OutboundDecision
      if self.inbound {
        let admission = InboundAdmission.check(
          table: self.table, metrics: self.metrics, address: self.address, port: self.port, peer: self.peer,
          named: headers.first(name: Self.serviceHeader), fallback: self.service, protocol: .http,
          request: request, now: now)
        switch admission {
        case .admitted(let upstream):
          decision = .service(upstream)
        case .refused(_, let status, let message, let marker, let retryAfter):
          self.respond(
            status: HTTPResponseStatus(statusCode: status), message: message, version: head.version,
            keepAlive: keepAlive, marker: marker, retryAfter: retryAfter)
          return
        }
      } else {
        let source = context.channel.remoteAddress.flatMap(EndpointAddress.init(socketAddress:))
        decision = self.table.decide(
          address: self.address, port: self.port, request: request, source: source, now: now)
      }
      switch decision {
      case .service(let upstream):
        // The upstream connection is ours to keep alive; the client's wish is answered here.
        // An upgrade keeps its Connection header, which names Upgrade.
        if !upgrade { head.headers.remove(name: "connection") }
        head.headers.remove(name: "keep-alive")
        if !self.inbound { head.headers.replaceOrAdd(name: Self.serviceHeader, value: upstream.service) }
        head.version = .http1_1
        self.serial &+= 1
        var exchange = Exchange(
          upstream: upstream, pending: [.head(head)], keepAlive: keepAlive, version: .http1_1,
          upgrade: upgrade)
        exchange.serial = self.serial
        exchange.method = head.method.rawValue
        exchange.timeoutNanos = Deadline.tighter(
          upstream.timeoutNanos,
          Deadline.milliseconds(headers.first(name: Deadline.header)).map { $0 * 1_000_000 })
        exchange.tried = [upstream.endpoint.ipv4]
        if let retries = upstream.retries, !upgrade, retries.effectiveAttempts > 1,
          retries.allows(method: exchange.method)
        {
          exchange.kept = [.head(head)]
        }
        self.exchange = exchange
        self.armTimers(for: exchange, context: context)
        if upstream.delayNanos > 0 {
          // An injected delay: the request (and its body) waits here.
          self.metrics.decided("faults", upstream.service, kind: "delay")
          let me = NIOLoopBound(self, eventLoop: context.eventLoop)
          context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(upstream.delayNanos))) {
            guard let exchange = me.value.exchange, exchange.upstream == upstream else { return }
            me.value.armPerTryTimer(for: exchange)  // the attempt starts now
            me.value.connect(to: upstream.endpoint)
          }
        } else {
          self.connect(to: upstream.endpoint)
        }
      case .overflow(let service, let limit):
        self.respond(
          status: .serviceUnavailable, message: "\(service): circuit breaker \(limit.rawValue) reached",
          version: head.version, keepAlive: keepAlive, overflow: limit)
      case .abort(let service, let status):
        self.metrics.decided("faults", service, kind: "abort")
        self.respond(
          status: HTTPResponseStatus(statusCode: status),
          message: "fault injected by the route of \(service)",
          version: head.version, keepAlive: keepAlive, marker: "fault")
      case .noEndpoint(let service):
        self.respond(
          status: .serviceUnavailable, message: "service \(service) has no healthy endpoint",
          version: head.version,
          keepAlive: keepAlive)
      case .passthrough:
        self.respond(status: .badGateway, message: "no such service", version: head.version, keepAlive: false)
      }
    case .body(let buffer):
      guard !self.discarding else { return }
      self.exchange?.sent += buffer.readableBytes
      self.keep(.body(.byteBuffer(buffer)), bytes: buffer.readableBytes)
      self.forward(.body(.byteBuffer(buffer)), flush: false)
    case .end(let trailers):
      guard !self.discarding else {
        self.discarding = false
        return
      }
      self.keep(.end(trailers), bytes: 0)
      self.exchange?.requestEnded = true
      self.forward(.end(trailers), flush: true)
    }
  }

  // MARK: - Upstream

  private func connect(to endpoint: EndpointAddress) {
    guard let context else { return }
    if let channel = self.upstreams[endpoint], channel.isActive {
      self.exchange?.channel = channel
      self.flushPending()
      return
    }
    // A new connection: within the service's connection and pending-request limits (which
    // bound what this sidecar sends a service; the inbound side has none).
    guard let service = self.exchange?.upstream.service else { return }
    let limited = !self.inbound
    if limited,
      let limit = self.table.hold(.maxConnections, service: service) ?? self.holdPending(service: service)
    {
      self.refuse(limit)
      return
    }
    let table = self.table
    let loop = context.eventLoop
    let me = NIOLoopBound(self, eventLoop: loop)
    // A meshed endpoint is spoken to over mutual TLS, its certificate naming its identity.
    let secure =
      self.inbound
      ? nil
      : self.table.peerIdentity(service: service, address: endpoint.ipv4).flatMap {
        expected in (try? self.tls.clientHandler(carries: .http1, expecting: expected)).flatMap { $0 }
      }.map { NIOLoopBound($0, eventLoop: loop) }
    ClientBootstrap(group: loop)
      .channelOption(
        ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SocketOptionName(SidecarProxy.soMark)),
        value: SocketOptionValue(Int32(bitPattern: self.mark))
      )
      .connectTimeout(.seconds(5))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let secure { try channel.pipeline.syncOperations.addHandler(secure.value) }
          try HTTPPipeline.configureClient(channel)
          try channel.pipeline.syncOperations.addHandler(
            UpstreamHandler(forwarder: me.value, endpoint: endpoint))
        }
      }
      .connect(to: endpoint.socketAddress)
      .whenComplete { result in
        let forwarder = me.value
        if limited { table.release(.maxPendingRequests, service: service) }
        switch result {
        case .success(let channel):
          if limited {
            channel.closeFuture.whenComplete { _ in table.release(.maxConnections, service: service) }
          }
          guard forwarder.context?.channel.isActive == true else {
            // The client left while this connection was being made: nobody will close it later.
            channel.close(promise: nil)
            return
          }
          forwarder.upstreams[endpoint] = channel
          guard forwarder.exchange?.upstream.endpoint == endpoint else { return }
          forwarder.exchange?.channel = channel
          forwarder.flushPending()
        case .failure:
          if limited { table.release(.maxConnections, service: service) }
          guard let exchange = forwarder.exchange, exchange.upstream.endpoint == endpoint else { return }
          if forwarder.retry(exchange, connected: false) { return }
          forwarder.finish(exchange, success: false, answered: true)
          forwarder.endExchange()
          forwarder.discarding = true
          forwarder.respond(
            status: .serviceUnavailable, message: "could not connect to \(endpoint)",
            version: exchange.version,
            keepAlive: exchange.keepAlive)
        }
      }
  }

  /// Takes a pending-request slot, giving the connection slot back when refused.
  private func holdPending(service: String) -> CircuitBreaker.Limit? {
    guard let limit = self.table.hold(.maxPendingRequests, service: service) else { return nil }
    self.table.release(.maxConnections, service: service)
    return limit
  }

  /// Fails the request in flight at once because a circuit breaker limit is full.
  private func refuse(_ limit: CircuitBreaker.Limit) {
    guard let exchange = self.exchange else { return }
    self.endExchange()
    self.finish(exchange, success: false, answered: true)
    self.respond(
      status: .serviceUnavailable,
      message: "\(exchange.upstream.service): circuit breaker \(limit.rawValue) reached",
      version: exchange.version, keepAlive: exchange.keepAlive, overflow: limit)
  }

  private func forward(_ part: HTTPClientRequestPart, flush: Bool) {
    guard self.exchange != nil else { return }
    if let upstream = self.exchange?.channel, self.exchange?.pending.isEmpty == true {
      upstream.write(part, promise: nil)
      if flush { upstream.flush() }
    } else {
      self.exchange?.pending.append(part)
    }
  }

  private func flushPending() {
    guard let exchange = self.exchange, let upstream = exchange.channel else { return }
    self.exchange?.pending = []
    for var part in exchange.pending {
      if case .head(var head) = part, let left = self.deadline(exchange) {
        // The next hop learns how long this attempt may take.
        head.headers.replaceOrAdd(name: Deadline.header, value: Deadline.value(nanoseconds: left))
        part = .head(head)
      }
      upstream.write(part, promise: nil)
    }
    upstream.flush()
  }

  /// A response part from `endpoint`'s connection.
  fileprivate func upstreamRead(
    _ part: HTTPClientResponsePart, from endpoint: EndpointAddress, on channel: any Channel
  ) {
    guard let context, var exchange = self.exchange, exchange.upstream.endpoint == endpoint,
      exchange.channel === channel
    else { return }
    if exchange.next != nil {
      // A failed answer being swallowed: once it has ended, the next attempt starts.
      if case .end = part { self.startNextAttempt() }
      return
    }
    switch part {
    case .head(let response):
      let code = Int(response.status.code)
      if let retries = exchange.upstream.retries, retries.retries(status: code),
        let next = self.grantRetry(exchange)
      {
        exchange.status = response.status.code
        exchange.next = next
        self.exchange = exchange
        return
      }
      var headers = response.headers
      let switching = exchange.upgrade && response.status == .switchingProtocols
      if !switching {
        headers.remove(name: "connection")
        if !exchange.keepAlive { headers.add(name: "connection", value: "close") }
      }
      headers.remove(name: "keep-alive")
      exchange.responding = true
      exchange.status = response.status.code
      self.exchange = exchange
      context.write(
        self.wrapOutboundOut(
          .head(HTTPResponseHead(version: exchange.version, status: response.status, headers: headers))),
        promise: nil)
    case .body(let buffer):
      self.exchange?.received += buffer.readableBytes
      context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    case .end(let trailers) where exchange.upgrade && exchange.status == 101:
      // Agreed: the rest is the upgraded protocol's bytes. The switch waits until the decoder
      // that delivered this part has returned.
      self.endExchange()
      self.finish(exchange, success: true)
      self.upstreams[endpoint] = nil
      context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: nil)
      guard let upstream = exchange.channel else { return }
      let client = context.channel
      context.eventLoop.assumeIsolated().execute {
        do {
          try HTTPPipeline.switchToTunnel(client: client, upstream: upstream)
        } catch {
          client.close(promise: nil)
          upstream.close(promise: nil)
        }
      }
    case .end(let trailers):
      self.endExchange()
      self.finish(exchange, success: exchange.status < 500)
      guard !exchange.keepAlive else {
        context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: nil)
        return
      }
      let written = context.eventLoop.makePromise(of: Void.self)
      let channel = context.channel
      written.futureResult.whenComplete { _ in channel.close(promise: nil) }
      context.writeAndFlush(self.wrapOutboundOut(.end(trailers)), promise: written)
    }
  }

  /// `endpoint`'s connection closed.
  fileprivate func upstreamClosed(_ endpoint: EndpointAddress, channel: any Channel) {
    if self.upstreams[endpoint] === channel { self.upstreams[endpoint] = nil }
    guard let exchange = self.exchange, exchange.upstream.endpoint == endpoint, exchange.channel === channel
    else {
      return
    }
    if exchange.next != nil {
      self.startNextAttempt()
      return
    }
    if !exchange.responding, self.retry(exchange, connected: true) { return }
    self.endExchange()
    self.finish(exchange, success: false, answered: !exchange.responding)
    if exchange.responding {
      self.context?.close(promise: nil)  // half a response cannot be mended
    } else {
      self.discarding = true
      self.respond(
        status: .badGateway, message: "\(endpoint) closed the connection", version: exchange.version,
        keepAlive: false)
    }
  }

  // MARK: - Retries and timeouts

  /// Keeps a request part for another attempt while the request may have one.
  private func keep(_ part: HTTPClientRequestPart, bytes: Int) {
    guard var exchange = self.exchange, exchange.kept != nil, let retries = exchange.upstream.retries else {
      return
    }
    exchange.keptBytes += bytes
    if exchange.keptBytes > retries.effectiveMaxBodyBytes {
      exchange.kept = nil  // too large to keep: this request is not retried
    } else {
      exchange.kept!.append(part)
    }
    self.exchange = exchange
  }

  /// The next attempt for `exchange`, granted by its rule's budget, or nil when it may not have
  /// one (no policy, last attempt, body not kept, request not complete, budget spent).
  private func grantRetry(_ exchange: Exchange) -> Upstream? {
    guard let retries = exchange.upstream.retries, exchange.kept != nil, exchange.requestEnded,
      exchange.attempt < retries.effectiveAttempts
    else { return nil }
    return self.table.retry(
      exchange.upstream, avoiding: exchange.tried, now: UInt64(MonotonicClock.nanoseconds()))
  }

  /// After a failure without an answer: starts another attempt if the policy, the request and
  /// the budget allow; true when it did.
  private func retry(_ exchange: Exchange, connected: Bool, timedOut: Bool = false) -> Bool {
    guard let retries = exchange.upstream.retries,
      retries.retriesFailure(connected: connected, timedOut: timedOut),
      let next = self.grantRetry(exchange)
    else { return false }
    self.exchange?.next = next
    self.startNextAttempt()
    return true
  }

  /// Ends the current attempt (counted as failed) and starts the granted next one after a
  /// backoff, on another connection.
  private func startNextAttempt() {
    guard let context, var exchange = self.exchange, let next = exchange.next else { return }
    let now = UInt64(MonotonicClock.nanoseconds())
    self.table.finish(
      exchange.upstream, now: now, success: false,
      outcome: RequestOutcome(status: exchange.status == 0 ? nil : Int(exchange.status)), superseded: true)
    exchange.upstream = next
    exchange.next = nil
    exchange.channel = nil
    exchange.status = 0
    exchange.attempt += 1
    exchange.tried.insert(next.endpoint.ipv4)
    exchange.pending = exchange.kept ?? []
    self.exchange = exchange
    self.metrics.retried(exchange.upstream.service)
    var random = SystemRandomNumberGenerator()
    let wait = (exchange.upstream.retries?.backoff ?? Backoff()).delay(
      attempt: exchange.attempt - 1, using: &random)
    let me = NIOLoopBound(self, eventLoop: context.eventLoop)
    let attempt = exchange.attempt
    let serial = exchange.serial
    context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(wait))) {
      let forwarder = me.value
      guard let exchange = forwarder.exchange, exchange.serial == serial, exchange.attempt == attempt else {
        return
      }
      forwarder.armPerTryTimer(for: exchange)
      forwarder.connect(to: next.endpoint)
    }
  }

  /// How long the current attempt may take, for the deadline header: the per-try timeout or what
  /// is left of the overall one, the tighter; nil when neither bounds it.
  private func deadline(_ exchange: Exchange) -> UInt64? {
    let now = UInt64(MonotonicClock.nanoseconds())
    let left = exchange.timeoutNanos.map { timeout in
      exchange.started + timeout > now ? exchange.started + timeout - now : 0
    }
    let perTry = exchange.upstream.retries?.perTryTimeoutMilliseconds.map { UInt64($0) * 1_000_000 }
    return Deadline.tighter(left, perTry)
  }

  /// The request's overall timeout (504 when it passes before the answer began) and, unless an
  /// injected delay holds it first, the first attempt's per-try timeout.
  private func armTimers(for exchange: Exchange, context: ChannelHandlerContext) {
    let me = NIOLoopBound(self, eventLoop: context.eventLoop)
    let serial = exchange.serial
    if let timeout = exchange.timeoutNanos {
      context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(timeout))) {
        let forwarder = me.value
        guard let exchange = forwarder.exchange, exchange.serial == serial else { return }
        let inbound = forwarder.inbound
        forwarder.metrics.decided(
          "timeouts", exchange.upstream.service, kind: inbound ? "deadline" : "overall")
        forwarder.endExchange()
        exchange.channel?.close(promise: nil)
        forwarder.finish(exchange, success: false, answered: !exchange.responding)
        if exchange.responding {
          forwarder.context?.close(promise: nil)
        } else {
          forwarder.respond(
            status: .gatewayTimeout,
            message: inbound ? "the caller's deadline passed" : "upstream request timeout",
            version: exchange.version, keepAlive: false, marker: inbound ? "deadline" : "error")
        }
      }
    }
    if exchange.upstream.delayNanos == 0 { self.armPerTryTimer(for: exchange) }
  }

  /// Gives up on an attempt that has not begun answering within the per-try timeout.
  private func armPerTryTimer(for exchange: Exchange) {
    guard let context, let perTry = exchange.upstream.retries?.perTryTimeoutMilliseconds else { return }
    let me = NIOLoopBound(self, eventLoop: context.eventLoop)
    let serial = exchange.serial
    let attempt = exchange.attempt
    context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(perTry))) {
      let forwarder = me.value
      guard let exchange = forwarder.exchange, exchange.serial == serial, exchange.attempt == attempt,
        !exchange.responding, exchange.next == nil
      else { return }
      // The slow connection is dropped, so that its late answer cannot be taken for another's.
      if let channel = exchange.channel {
        if forwarder.upstreams[exchange.upstream.endpoint] === channel {
          forwarder.upstreams[exchange.upstream.endpoint] = nil
        }
        forwarder.exchange?.channel = nil
        channel.close(promise: nil)
      }
      if forwarder.retry(exchange, connected: true, timedOut: true) { return }
      forwarder.metrics.decided("timeouts", exchange.upstream.service, kind: "per-try")
      forwarder.endExchange()
      forwarder.finish(exchange, success: false, answered: true)
      forwarder.respond(
        status: .gatewayTimeout, message: "the endpoint did not answer in time", version: exchange.version,
        keepAlive: false)
    }
  }

  // MARK: - Helpers

  /// Ends a request's pick; `answered` when the proxy answers it itself (counted there).
  private func finish(_ exchange: Exchange, success: Bool, answered: Bool = false) {
    guard !self.inbound else { return }  // no balancer and no outbound figures on that side
    let now = UInt64(MonotonicClock.nanoseconds())
    self.table.finish(
      exchange.upstream, now: now, success: success,
      outcome: RequestOutcome(status: exchange.status == 0 ? nil : Int(exchange.status)))
    // A next attempt granted but never started gives its slot and pick back too.
    if let next = exchange.next { self.table.finish(next, now: now, success: true, superseded: true) }
    guard !answered else { return }
    self.metrics.request(
      to: exchange.upstream.service, protocol: "http",
      status: exchange.status == 0 ? nil : Int(exchange.status),
      nanoseconds: now &- exchange.started, sent: exchange.sent, received: exchange.received)
  }

  /// Answers the current request from the proxy itself.
  private func respond(
    status: HTTPResponseStatus, message: String, version: HTTPVersion, keepAlive: Bool,
    marker: String = "error", overflow: CircuitBreaker.Limit? = nil, retryAfter: Int? = nil
  ) {
    guard let context else { return }
    if !self.inbound {
      self.metrics.request(to: self.service, protocol: "http", status: Int(status.code), nanoseconds: 0)
    }
    self.discarding = true
    var body = context.channel.allocator.buffer(capacity: message.utf8.count + 1)
    body.writeString(message + "\n")
    var headers = HTTPHeaders([
      ("content-type", "text/plain"), ("content-length", String(body.readableBytes)),
      ("x-weft-proxy", marker),
    ])
    if !keepAlive { headers.add(name: "connection", value: "close") }
    if let overflow { headers.add(name: "x-weft-overflow", value: overflow.rawValue) }
    if let retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
    context.write(
      self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))),
      promise: nil)
    context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    let written = context.eventLoop.makePromise(of: Void.self)
    if !keepAlive {
      let channel = context.channel
      written.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }
    context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: written)
  }
}

/// Hands an upstream connection's response parts to its forwarder.
final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPClientResponsePart

  private let forwarder: HTTPForwarder
  private let endpoint: EndpointAddress

  init(forwarder: HTTPForwarder, endpoint: EndpointAddress) {
    self.forwarder = forwarder
    self.endpoint = endpoint
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    self.forwarder.upstreamRead(self.unwrapInboundIn(data), from: self.endpoint, on: context.channel)
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.forwarder.upstreamClosed(self.endpoint, channel: context.channel)
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }
}

/// Request checks that keep a request from being read differently by the proxy and the endpoint.
public enum HTTPRequestCheck {
  /// Why a request head is refused, or nil.
  public static func problem(_ head: HTTPRequestHead) -> String? {
    let lengths = head.headers["content-length"]
    let encodings = head.headers["transfer-encoding"]
    if !lengths.isEmpty && !encodings.isEmpty {
      return "both Content-Length and Transfer-Encoding"
    }
    let values = Set(
      lengths.flatMap { $0.split(separator: ",").map { String($0.trimmingOWS) } })
    if values.count > 1 { return "conflicting Content-Length values" }
    if let value = values.first, UInt64(value) == nil { return "Content-Length '\(value)' is not a number" }
    if let last = encodings.last,
      last.lowercased().split(separator: ",").last?.trimmingOWS != "chunked"
    {
      return "Transfer-Encoding must end with chunked"
    }
    return nil
  }
}

extension Substring {
  /// Without the spaces and tabs around it (HTTP's optional whitespace, RFC 9110 section 5.6.3).
  fileprivate var trimmingOWS: Substring {
    let isOWS = { (c: Character) in c == " " || c == "\t" }
    guard let first = self.firstIndex(where: { !isOWS($0) }), let last = self.lastIndex(where: { !isOWS($0) })
    else { return "" }
    return self[first...last]
  }
}
