import Glibc
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import WeftIdentity

/// Proxies one client connection to an `http2` or `grpc` service stream by stream, as frames:
/// every stream the client opens gets its own balancer pick (and route rule), and its HEADERS
/// and DATA are relayed onto a stream of an HTTP/2 connection to that endpoint, kept for the
/// client connection's life and shared by its streams. Trailers (gRPC's status) and streaming
/// both ways pass as they are; a stream that fails is reset alone, the connection and its other
/// streams go on.
///
/// Both connections run `NIOHTTP2Handler` without a stream multiplexer: no channel per stream,
/// just a table from stream ID to ``HTTP2Exchange``, and flow-control credit given back as the
/// other side takes the bytes (``HTTP2Credit``). The session is the client connection's handler.
final class HTTP2Session: ChannelInboundHandler {
  typealias InboundIn = HTTP2Frame
  typealias OutboundOut = HTTP2Frame

  let table: ServiceTable
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
  let loop: any EventLoop
  /// The client's address (for hashing on the source).
  private let source: EndpointAddress?
  private var context: ChannelHandlerContext?
  private var credit = HTTP2Session.newCredit()
  /// The client's streams being relayed.
  private var exchanges: [HTTP2StreamID: HTTP2Exchange] = [:]
  /// Connections that take new streams, by endpoint; and every one open (closed with the client's).
  private var upstreams: [EndpointAddress: HTTP2UpstreamConnection] = [:]
  private var connections: [HTTP2UpstreamConnection] = []
  /// Upstream connections written to since their last flush.
  private var unflushed: [HTTP2UpstreamConnection] = []
  private var clientUnflushed = false
  private var flushScheduled = false
  /// Inside a read of the client's or an upstream connection: writes are flushed when it
  /// completes, so the frames of one read leave together.
  var reading = false
  private var closed = false
  private var lastStreamID = HTTP2StreamID(0)
  private var draining = false

  /// The windows the sidecar gives its peers, on both of its connections: 1 MiB per stream
  /// (64 KiB would cap a stream at a window per round trip), 4 MiB per connection.
  static let streamWindow = 1 << 20
  static let connectionWindow = 4 << 20

  /// The credit book of one of the sidecar's connections, for those windows.
  static func newCredit() -> HTTP2Credit {
    HTTP2Credit(streamWindow: Self.streamWindow, connectionWindow: Self.connectionWindow)
  }

  /// The sidecar's HTTP/2 settings, both towards clients and upstream: the windows above, up to
  /// 256 streams at once.
  static let connection: NIOHTTP2Handler.ConnectionConfiguration = {
    var configuration = NIOHTTP2Handler.ConnectionConfiguration()
    configuration.initialSettings = [
      HTTP2Setting(parameter: .maxConcurrentStreams, value: 256),
      HTTP2Setting(parameter: .initialWindowSize, value: HTTP2Session.streamWindow),
      HTTP2Setting(parameter: .maxHeaderListSize, value: 64 << 10),
    ]
    configuration.targetWindowSize = HTTP2Session.connectionWindow
    return configuration
  }()
  /// Per-stream settings: the relay takes NIOHTTP2's defaults for its limits on resets and
  /// stream errors; the window and buffer sizes apply to servers built on stream channels
  /// (the tests' workloads), with the sidecar's stream window.
  static let stream: NIOHTTP2Handler.StreamConfiguration = {
    var configuration = NIOHTTP2Handler.StreamConfiguration()
    configuration.targetWindowSize = HTTP2Session.streamWindow
    configuration.outboundBufferSizeHighWatermark = 256 << 10
    configuration.outboundBufferSizeLowWatermark = 64 << 10
    return configuration
  }()

  init(
    table: ServiceTable, metrics: TrafficMetrics, address: UInt32, port: UInt16, mark: UInt32,
    tls: MeshTLS = MeshTLS(), loop: any EventLoop, inbound: Bool = false, peer: SPIFFEID? = nil,
    service: String = "unknown", source: EndpointAddress? = nil
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
    self.source = source
  }

  /// Sets up HTTP/2 on an accepted client connection. `inbound` serves the workload's own
  /// listener for a caller `peer` (nil: plaintext) of `service` (see ``inbound``).
  static func serve(
    _ client: any Channel, table: ServiceTable, metrics: TrafficMetrics, address: UInt32, port: UInt16,
    mark: UInt32, tls: MeshTLS = MeshTLS(), inbound: Bool = false, peer: SPIFFEID? = nil,
    service: String = "unknown"
  ) throws {
    let session = HTTP2Session(
      table: table, metrics: metrics, address: address, port: port, mark: mark, tls: tls,
      loop: client.eventLoop, inbound: inbound, peer: peer, service: service,
      source: client.remoteAddress.flatMap(EndpointAddress.init(socketAddress:)))
    try client.pipeline.syncOperations.addHandlers([
      Self.handler(mode: .server, channel: client), session,
    ])
  }

  /// An `NIOHTTP2Handler` with the sidecar's settings that closes its connection after a
  /// connection error (it sends the GOAWAY, but leaves the connection open).
  ///
  /// Header blocks (field names and values, pseudo-headers, content-length against DATA) are
  /// checked on the client's connection only, both ways: a request as it comes in, a response
  /// as it goes out. On the upstream connection (`.client`) they would be checked a second
  /// time in this sidecar, which cost a tenth of its CPU per HTTP/2 request; a response that
  /// fails the check on its way out resets the client's stream (``HTTP2Exchange``).
  static func handler(mode: NIOHTTP2Handler.ParserMode, channel: any Channel) -> NIOHTTP2Handler {
    NIOHTTP2Handler(
      mode: mode, frameDelegate: ConnectionErrorCloser(channel: channel),
      connectionConfiguration: mode == .server ? Self.connection : Self.upstreamConnection,
      streamConfiguration: Self.stream)
  }

  /// The upstream connections' settings: the sidecar's, without a second check of header blocks.
  static let upstreamConnection: NIOHTTP2Handler.ConnectionConfiguration = {
    var configuration = HTTP2Session.connection
    configuration.headerBlockValidation = .disabled
    configuration.contentLengthValidation = .disabled
    return configuration
  }()

  // MARK: - The client connection

  func handlerAdded(context: ChannelHandlerContext) { self.context = context }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let frame = self.unwrapInboundIn(data)
    self.reading = true
    switch frame.payload {
    case .headers(let headers):
      if let exchange = self.exchanges[frame.streamID] {
        exchange.clientFrame(.headers(headers))
      } else if !self.closed {
        self.open(frame.streamID, headers)
      }
    case .data(let data):
      let bytes = HTTP2Credit.flowControlled(data)
      if let exchange = self.exchanges[frame.streamID] {
        exchange.clientFrame(.data(data), flowControlled: bytes)
      } else {
        self.giveBack(bytes, stream: nil)
      }
    case .settings(.settings):
      if let grow = self.credit.growConnection() { self.writeToClient(grow) }
    default:
      // Window updates, priority, pings and the client's GOAWAY belong to this hop (the
      // handler below keeps their state); a reset closes the stream, seen as its close event.
      break
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    self.readComplete()
    context.fireChannelReadComplete()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let closed = event as? StreamClosedEvent {
      self.credit.closed(closed.streamID)
      if let exchange = self.exchanges.removeValue(forKey: closed.streamID) {
        exchange.clientClosed()
        self.streamClosed()
      }
    } else if event is ChannelShouldQuiesceEvent {
      self.drain()
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.closed = true
    let open = self.exchanges
    self.exchanges = [:]
    for exchange in open.values { exchange.clientClosed() }
    for connection in self.connections { connection.close() }
    self.connections = []
    self.upstreams = [:]
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A stream error resets that stream alone (the handler below did); a connection error
    // closes the connection once its GOAWAY is out (``ConnectionErrorCloser``).
  }

  private func open(_ id: HTTP2StreamID, _ headers: HTTP2Frame.FramePayload.Headers) {
    if id > self.lastStreamID { self.lastStreamID = id }
    let exchange = HTTP2Exchange(session: self, id: id)
    self.exchanges[id] = exchange
    exchange.clientFrame(.headers(headers))
  }

  /// A client stream ended; a draining connection closes after its last one.
  private func streamClosed() {
    if self.draining && self.exchanges.isEmpty { self.context?.close(promise: nil) }
  }

  /// Drain: tell the client (GOAWAY, no error) that no stream after the last one seen will be
  /// served, finish the open ones, then close.
  private func drain() {
    guard !self.draining, let context else { return }
    self.draining = true
    let goAway = HTTP2Frame(
      streamID: .rootStream,
      payload: .goAway(lastStreamID: self.lastStreamID, errorCode: .noError, opaqueData: nil))
    context.writeAndFlush(self.wrapOutboundOut(goAway), promise: nil)
    if self.exchanges.isEmpty { context.close(promise: nil) }
  }

  // MARK: - Called by exchanges and upstream connections

  /// Writes a frame to the client, flushed when the current read completes (or soon, outside
  /// a read).
  func writeToClient(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>? = nil) {
    guard let context else {
      promise?.fail(ChannelError.ioOnClosedChannel)
      return
    }
    context.write(self.wrapOutboundOut(frame), promise: promise)
    if !self.clientUnflushed {
      self.clientUnflushed = true
      self.flushSoon()
    }
  }

  /// Gives `bytes` of a client stream's DATA back to the client (nil: only the connection's).
  func giveBack(_ bytes: Int, stream: HTTP2StreamID?) {
    let updates = self.credit.give(bytes, stream: stream)
    if let update = updates.stream { self.writeToClient(update) }
    if let update = updates.connection { self.writeToClient(update) }
  }

  /// Notes an upstream connection written to since its last flush.
  func markUnflushed(_ connection: HTTP2UpstreamConnection) {
    self.unflushed.append(connection)
    self.flushSoon()
  }

  /// A read of the client or an upstream connection completed: everything written goes out.
  func readComplete() {
    self.reading = false
    if !self.unflushed.isEmpty {
      let connections = self.unflushed
      self.unflushed = []
      for connection in connections { connection.flush() }
    }
    if self.clientUnflushed {
      self.clientUnflushed = false
      self.context?.flush()
    }
  }

  /// Outside a read (a timer, a connection that just opened), flushes once the current task is
  /// done, so that what it wrote leaves together.
  private func flushSoon() {
    guard !self.reading, !self.flushScheduled else { return }
    self.flushScheduled = true
    self.loop.assumeIsolated().execute {
      self.flushScheduled = false
      if !self.reading { self.readComplete() }
    }
  }

  /// An upstream connection takes no new streams any more (GOAWAY, exhausted IDs) or closed.
  func retire(_ connection: HTTP2UpstreamConnection, closed: Bool) {
    if self.upstreams[connection.endpoint] === connection { self.upstreams[connection.endpoint] = nil }
    if closed { self.connections.removeAll { $0 === connection } }
  }

  /// Resets a client stream (the answer cannot be completed).
  func resetClient(_ id: HTTP2StreamID, _ code: HTTP2ErrorCode = .cancel) {
    self.writeToClient(HTTP2Frame(streamID: id, payload: .rstStream(code)))
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
  func decide(_ headers: HPACKHeaders) -> OutboundDecision {
    self.table.decide(
      address: self.address, port: self.port, request: Self.request(headers), source: self.source,
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

  /// A new upstream connection would pass a circuit breaker limit of `service`.
  struct Overflow: Error {
    var limit: CircuitBreaker.Limit
  }

  /// The connection to `endpoint` that takes new streams, connecting first when there is none
  /// (within `service`'s circuit breaker limits, outbound).
  func connection(to endpoint: EndpointAddress, service: String) throws -> HTTP2UpstreamConnection {
    guard !self.closed else { throw ChannelError.ioOnClosedChannel }
    if let open = self.upstreams[endpoint] { return open }
    let limited = !self.inbound
    if limited {
      if let limit = self.table.hold(.maxConnections, service: service) { throw Overflow(limit: limit) }
      if let limit = self.table.hold(.maxPendingRequests, service: service) {
        self.table.release(.maxConnections, service: service)
        throw Overflow(limit: limit)
      }
    }
    let connection = HTTP2UpstreamConnection(session: self, endpoint: endpoint)
    self.upstreams[endpoint] = connection
    self.connections.append(connection)
    // A meshed endpoint is spoken to over mutual TLS (the workload itself, inbound, is not).
    let secure =
      self.inbound
      ? nil
      : self.table.peerIdentity(service: service, address: endpoint.ipv4).flatMap { expected in
        (try? self.tls.clientHandler(carries: .http2, expecting: expected)).flatMap { $0 }
      }.map { NIOLoopBound($0, eventLoop: self.loop) }
    let bound = NIOLoopBound(connection, eventLoop: self.loop)
    let table = self.table
    ClientBootstrap(group: self.loop)
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
      .assumeIsolated()
      .whenComplete { result in
        let connection = bound.value
        switch result {
        case .success(let channel):
          do {
            if let secure { try channel.pipeline.syncOperations.addHandler(secure.value) }
            try channel.pipeline.syncOperations.addHandlers([
              Self.handler(mode: .client, channel: channel), connection,
            ])
            connection.connected(channel)
          } catch {
            channel.close(promise: nil)
            connection.failed(error)
          }
        case .failure(let error):
          connection.failed(error)
        }
      }
    return connection
  }
}

/// Closes a connection after its `NIOHTTP2Handler` sent a GOAWAY with an error (a connection
/// error: the protocol says the connection is over, the handler only says so).
private struct ConnectionErrorCloser: NIOHTTP2FrameDelegate {
  let channel: any Channel

  func wroteFrame(_ frame: HTTP2Frame) {
    guard case .goAway(_, let code, _) = frame.payload, code != .noError else { return }
    let channel = self.channel
    // The GOAWAY is flushed right after this call; close once it is out.
    channel.eventLoop.execute { channel.close(promise: nil) }
  }
}
