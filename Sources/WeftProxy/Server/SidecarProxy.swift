import Glibc
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import WeftIdentity
import WeftWire

/// The sidecar's listeners, in the workload's network namespace. Outbound (15001) takes the
/// workload's connections that the interception rules redirected, finds where they were going
/// (SO_ORIGINAL_DST) and connects to an endpoint of the service behind that virtual IP and port,
/// or to the original destination itself when it is not a service. Inbound (15006) takes
/// connections to the workload and passes them on to the port they were for. Every socket the
/// proxy opens carries ``InterceptionRules/proxyMark``, so the rules let it through.
///
/// Connections to service ports that speak HTTP are proxied request by request (HTTP/1.1) or
/// stream by stream (HTTP/2, gRPC); the rest is relayed as opaque TCP with half-close.
public final class SidecarProxy: Sendable {
  /// The listeners' bound ports.
  public let outboundPort: Int
  /// The inbound listener's port.
  public let inboundPort: Int
  /// The routing table; apply new snapshots to it at any time.
  public let table: ServiceTable
  /// Requests, latency and bytes per destination service.
  public let metrics: TrafficMetrics
  /// Mutual TLS with the other sidecars (plaintext until it has credentials).
  public let tls: MeshTLS
  private let channels: [any Channel]
  private let tally = Mutex(ProxyCounters())
  /// Client connections open now, so that shutdown can drain them.
  private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
  /// Set once a drain has begun: HTTP/1.1 answers then close their connections.
  let draining = DrainFlag()

  /// What the proxy has done, for the admin endpoint and tests.
  public struct ProxyCounters: Sendable, Hashable, Codable {
    /// Outbound connections to a service endpoint.
    public var outboundToService = 0
    /// Outbound connections passed through to a destination that is not a service.
    public var outboundPassthrough = 0
    /// Outbound connections refused (no endpoint, connect failure, no original destination).
    public var outboundFailed = 0
    /// Inbound connections relayed to the workload.
    public var inbound = 0
    /// Inbound connections that could not be relayed.
    public var inboundFailed = 0
    /// Outbound connections to a meshed endpoint over mutual TLS.
    public var outboundMTLS = 0
    /// Inbound connections from another sidecar over mutual TLS.
    public var inboundMTLS = 0
    /// Inbound plaintext connections to a service port accepted (permissive).
    public var inboundPlaintext = 0
    /// Inbound plaintext connections to a service port refused (strict).
    public var inboundPlaintextRefused = 0
  }

  /// The counters so far.
  public var counters: ProxyCounters { self.tally.withLock { $0 } }

  private init(
    outboundPort: Int, inboundPort: Int, table: ServiceTable, metrics: TrafficMetrics, tls: MeshTLS,
    channels: [any Channel]
  ) {
    self.tls = tls
    self.outboundPort = outboundPort
    self.inboundPort = inboundPort
    self.table = table
    self.metrics = metrics
    self.channels = channels
  }

  /// Binds both listeners on `host` (in the calling thread's network namespace); `source` names
  /// the workload in the metrics.
  public static func start(
    host: String = "0.0.0.0", outboundPort: Int = 15001, inboundPort: Int = 15006, table: ServiceTable,
    source: String = "unknown", tls: MeshTLS = MeshTLS(),
    mark: UInt32 = InterceptionRules().proxyMark,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) async throws -> SidecarProxy {
    let box = ProxyBox()
    let outbound = try await Self.listen(host: host, port: outboundPort, group: group) { channel in
      box.proxy?.accept(channel, outbound: true, mark: mark, group: group)
    }
    let inbound = try await Self.listen(host: host, port: inboundPort, group: group) { channel in
      box.proxy?.accept(channel, outbound: false, mark: mark, group: group)
    }
    let proxy = SidecarProxy(
      outboundPort: outbound.localAddress?.port ?? outboundPort,
      inboundPort: inbound.localAddress?.port ?? inboundPort,
      table: table, metrics: TrafficMetrics(source: source), tls: tls, channels: [outbound, inbound])
    box.proxy = proxy
    return proxy
  }

  /// Closes the listeners (open connections finish on their own).
  public func stop() async {
    for channel in self.channels { try? await channel.close() }
  }

  /// How a drain went.
  public struct DrainResult: Sendable, Hashable {
    /// Connections open when it began.
    public var open: Int
    /// Those still open at the deadline, closed then.
    public var cut: Int
  }

  /// Shuts down gracefully: asks every open connection to finish (HTTP/1.1: idle keep-alives
  /// close now, a request in flight gets its answer and then the connection closes; HTTP/2:
  /// GOAWAY, open streams finish; opaque connections run on), answers requests on connections
  /// that come meanwhile with `Connection: close`, and closes what is still open after
  /// `timeout`; then stops listening. The interception rules must stay in place until this
  /// returns: the replies of redirected connections are translated back by them.
  public func drain(timeout: Duration) async -> DrainResult {
    self.draining.set()
    let open = self.connections.withLock { Array($0.values) }
    for channel in open {
      channel.eventLoop.execute {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
      }
    }
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline, !self.connections.withLock({ $0.isEmpty }) {
      try? await Task.sleep(for: .milliseconds(20))
    }
    let left = self.connections.withLock { Array($0.values) }
    for channel in left { channel.close(promise: nil) }
    await self.stop()
    return DrainResult(open: open.count, cut: left.count)
  }

  private static func listen(
    host: String, port: Int, group: any EventLoopGroup, accept: @escaping @Sendable (any Channel) -> Void
  ) async throws -> any Channel {
    try await ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.allowRemoteHalfClosure, value: true)
      .childChannelOption(.autoRead, value: false)
      .childChannelInitializer { channel in
        accept(channel)
        return channel.eventLoop.makeSucceededVoidFuture()
      }
      .bind(host: host, port: port).get()
  }

  /// Finds where the accepted connection was going, then relays it there or to a service endpoint.
  private func accept(_ client: any Channel, outbound: Bool, mark: UInt32, group: any EventLoopGroup) {
    let direction = outbound ? "outbound" : "inbound"
    let metrics = self.metrics
    metrics.opened(direction, 1)
    let id = ObjectIdentifier(client)
    self.connections.withLock { $0[id] = client }
    client.closeFuture.whenComplete { _ in
      metrics.opened(direction, -1)
      self.connections.withLock { $0[id] = nil }
    }
    Self.originalDestination(client).whenComplete { result in
      guard case .success(let destination) = result else {
        self.count { outbound ? ($0.outboundFailed += 1) : ($0.inboundFailed += 1) }
        client.close(promise: nil)
        return
      }
      self.relay(client, to: destination, outbound: outbound, mark: mark)
    }
  }

  /// Ports declared `http`, `http2` or `grpc` are proxied by what the client turns out to speak
  /// (the first bytes decide: HTTP/1.1 request by request, HTTP/2 stream by stream, else opaque
  /// per connection); `tcp` ports and non-service destinations are relayed as they are.
  private func relay(_ client: any Channel, to destination: EndpointAddress, outbound: Bool, mark: UInt32) {
    guard outbound else {
      self.relayInbound(client, to: destination, mark: mark)
      return
    }
    guard let found = self.table.lookup(address: destination.ipv4, port: destination.port),
      found.protocol != .tcp
    else {
      self.relayOpaque(client, to: destination, outbound: outbound, mark: mark, initial: nil)
      return
    }
    let table = self.table
    let metrics = self.metrics
    let draining = self.draining
    let tls = self.tls
    let service = found.service
    client.eventLoop.execute {
      let sniffer = ProtocolSniffer(timeout: Self.detectionTimeout) { detected, bytes, inputClosed in
        switch detected {
        case .http1:
          self.count { $0.outboundToService += 1 }
          // A client that half-closes after its request still gets the answer (the forwarder
          // closes once it is sent).
          Self.start(client, replaying: bytes, halfClosure: true) {
            try HTTPPipeline.configureServer(client)
            try client.pipeline.syncOperations.addHandler(
              HTTPForwarder(
                table: table, metrics: metrics, draining: draining, service: service,
                address: destination.ipv4,
                port: destination.port, mark: mark, tls: tls))
          }
        case .http2:
          self.count { $0.outboundToService += 1 }
          Self.start(client, replaying: bytes) {
            try HTTP2Session.serve(
              client, table: table, metrics: metrics, address: destination.ipv4, port: destination.port,
              mark: mark, tls: tls)
          }
        case .tls, .opaque:
          self.relayOpaque(
            client, to: destination, outbound: true, mark: mark, initial: bytes, inputClosed: inputClosed)
        }
      }
      do {
        try client.pipeline.syncOperations.addHandler(sniffer)
      } catch {
        client.close(promise: nil)
      }
    }
  }

  /// Passes a connection to the workload itself on. To a port where it serves a service:
  /// mutual TLS from another sidecar is terminated (its ALPN says what it carries: HTTP/1.1 goes
  /// request by request, HTTP/2 stream by stream, anything else is relayed), plaintext is
  /// refused when the service is `strict` and otherwise handled as it comes (HTTP/1.1 on `http`, `http2` and `grpc` ports
  /// request by request, the rest relayed); either way the local rate limits and the caller's
  /// deadline apply. Other ports are relayed untouched.
  private func relayInbound(_ client: any Channel, to destination: EndpointAddress, mark: UInt32) {
    guard let found = self.table.inboundService(address: destination.ipv4, port: destination.port) else {
      self.relayOpaque(client, to: destination, outbound: false, mark: mark, initial: nil)
      return
    }
    let service = found.service
    let strict = self.table.mtlsMode(of: service) == .strict
    guard found.protocol != .tcp || self.tls.isReady || strict else {
      // No TLS to look for: server-first protocols are not kept waiting.
      self.count { $0.inboundPlaintext += 1 }
      self.relayAdmitted(client, to: destination, service: service, mark: mark, initial: nil)
      return
    }
    client.eventLoop.execute {
      // A mesh peer speaks first (its ClientHello), so on `tcp` ports the wait is short.
      let timeout = found.protocol == .tcp ? TimeAmount.milliseconds(100) : Self.detectionTimeout
      let sniffer = ProtocolSniffer(timeout: timeout) { detected, bytes, inputClosed in
        if detected == .tls, self.tls.isReady {
          self.terminateTLS(client, to: destination, service: service, mark: mark, replaying: bytes)
          return
        }
        if strict {
          self.count { $0.inboundPlaintextRefused += 1 }
          client.close(promise: nil)
          return
        }
        self.count { $0.inboundPlaintext += 1 }
        if detected == .http1, found.protocol != .tcp {
          Self.start(client, replaying: bytes) {
            try self.addInboundHTTP(client, to: destination, service: service, mark: mark)
          }
        } else {
          self.relayAdmitted(
            client, to: destination, service: service, mark: mark, initial: bytes, inputClosed: inputClosed)
        }
      }
      do {
        try client.pipeline.syncOperations.addHandler(sniffer)
      } catch {
        client.close(promise: nil)
      }
    }
  }

  /// The inbound HTTP/1.1 handlers (after any TLS handler).
  private func addInboundHTTP(
    _ client: any Channel, to destination: EndpointAddress, service: String, mark: UInt32,
    peer: SPIFFEID? = nil
  ) throws {
    self.count { $0.inbound += 1 }
    try HTTPPipeline.configureServer(client)
    try client.pipeline.syncOperations.addHandler(
      HTTPForwarder(
        table: self.table, metrics: self.metrics, draining: self.draining, service: service,
        address: destination.ipv4, port: destination.port, mark: mark, inbound: true, peer: peer))
  }

  /// Terminates another sidecar's mutual TLS, then serves what its ALPN token says it carries.
  private func terminateTLS(
    _ client: any Channel, to destination: EndpointAddress, service: String, mark: UInt32,
    replaying bytes: ByteBuffer
  ) {
    guard let handler = self.tls.serverHandler() else {
      client.close(promise: nil)
      return
    }
    let gate = TLSInboundGate { negotiated, gate in
      self.count { $0.inboundMTLS += 1 }
      let peer = MeshTLS.peerIdentity(of: handler)
      if negotiated == MeshTLS.Carries.http1.rawValue {
        do {
          try client.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
          try self.addInboundHTTP(client, to: destination, service: service, mark: mark, peer: peer)
          gate.release()
        } catch {
          client.close(promise: nil)
        }
        return
      }
      if negotiated == MeshTLS.Carries.http2.rawValue {
        // HTTP/2 and gRPC stream by stream, so that policies by method and path hold per call.
        do {
          try client.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
          self.count { $0.inbound += 1 }
          try HTTP2Session.serve(
            client, table: self.table, metrics: self.metrics, address: destination.ipv4,
            port: destination.port,
            mark: mark, inbound: true, peer: peer, service: service)
          gate.release()
        } catch {
          client.close(promise: nil)
        }
        return
      }
      // Opaque bytes go to the workload as they are, once it is connected; a close_notify from
      // the caller is a half-close, passed on like a FIN.
      _ = client.setOption(.autoRead, value: false)
      let held = NIOLoopBound(gate, eventLoop: client.eventLoop)
      self.relayAdmitted(
        client, to: destination, service: service, mark: mark, initial: nil, peer: peer,
        onRelayed: { held.value.release() })
    }
    Self.start(client, replaying: bytes, halfClosure: true) {
      try client.pipeline.syncOperations.addHandler(handler)
      try client.pipeline.syncOperations.addHandler(gate)
    }
  }

  /// Relays an inbound connection as it is if the access policies let its caller (`peer`, nil
  /// for plaintext) reach the service and the service's rate limit has a token for it; closes
  /// it otherwise.
  private func relayAdmitted(
    _ client: any Channel, to destination: EndpointAddress, service: String, mark: UInt32,
    initial: ByteBuffer?, inputClosed: Bool = false, peer: SPIFFEID? = nil,
    onRelayed: (@Sendable () -> Void)? = nil
  ) {
    // A connection does not say which service it called: every service on the port must allow it.
    let access = self.table.authorizeAll(
      address: destination.ipv4, port: destination.port, peer: peer, request: nil)
    self.metrics.decided("policy", service, kind: access.allowed ? "allow" : "deny")
    guard access.allowed else {
      AccessLog.denied(service: service, decision: access)
      self.count { $0.inboundFailed += 1 }
      client.close(promise: nil)
      return
    }
    let now = UInt64(MonotonicClock.nanoseconds())
    if let refusal = self.table.admit(service: service, request: nil, now: now) {
      self.metrics.decided("rate_limited", service, kind: refusal.route == nil ? "service" : "route")
      self.count { $0.inboundFailed += 1 }
      client.close(promise: nil)
      return
    }
    self.relayOpaque(
      client, to: destination, outbound: false, mark: mark, initial: initial, inputClosed: inputClosed,
      onRelayed: onRelayed)
  }

  /// How long a client on an HTTP port may take to send its first bytes before its connection is
  /// taken as opaque.
  static let detectionTimeout = TimeAmount.seconds(5)

  /// Sets up a detected protocol's handlers, then replays the bytes the detection read and lets
  /// the connection read on its own.
  /// `halfClosure` keeps a FIN from the client a half-close (TLS: its close_notify may follow
  /// its last bytes at once) rather than the end of the connection.
  private static func start(
    _ client: any Channel, replaying bytes: ByteBuffer, halfClosure: Bool = false, _ setUp: () throws -> Void
  ) {
    do {
      try setUp()
      // Before the replay: HTTP/2 streams opened by it take the connection's autoRead as theirs.
      try client.syncOptions?.setOption(.allowRemoteHalfClosure, value: halfClosure)
      try client.syncOptions?.setOption(.autoRead, value: true)
      client.pipeline.fireChannelRead(bytes)
      client.pipeline.fireChannelReadComplete()
    } catch {
      client.close(promise: nil)
    }
  }

  /// Relays a connection as opaque bytes: to a service endpoint picked per connection (over
  /// mutual TLS when it is meshed), or to the original destination. `initial` bytes (read by
  /// detection) go first; `onRelayed` runs once the relay is in place.
  private func relayOpaque(
    _ client: any Channel, to destination: EndpointAddress, outbound: Bool, mark: UInt32,
    initial: ByteBuffer?, inputClosed: Bool = false,
    onRelayed: (@Sendable () -> Void)? = nil
  ) {
    var target = destination
    var chosen: Upstream?
    if outbound {
      let now = UInt64(MonotonicClock.nanoseconds())
      let source = client.remoteAddress.flatMap(EndpointAddress.init(socketAddress:))
      switch self.table.decide(address: destination.ipv4, port: destination.port, source: source, now: now) {
      case .service(let upstream):
        // An opaque connection is an upstream connection of its own, pending until it opens.
        if self.table.hold(.maxConnections, service: upstream.service) != nil {
          self.finish(upstream, success: true, judged: false)
          self.count { $0.outboundFailed += 1 }
          client.close(promise: nil)
          return
        }
        if self.table.hold(.maxPendingRequests, service: upstream.service) != nil {
          self.table.release(.maxConnections, service: upstream.service)
          self.finish(upstream, success: true, judged: false)
          self.count { $0.outboundFailed += 1 }
          client.close(promise: nil)
          return
        }
        target = upstream.endpoint
        chosen = upstream
        self.count { $0.outboundToService += 1 }
      case .noEndpoint, .abort, .overflow:
        self.count { $0.outboundFailed += 1 }
        client.close(promise: nil)
        return
      case .passthrough:
        self.count { $0.outboundPassthrough += 1 }
      }
    } else {
      self.count { $0.inbound += 1 }
    }
    let lease = chosen
    let secure: NIOLoopBound<NIOSSLClientHandler>?
    if let lease,
      let expected = self.table.peerIdentity(service: lease.service, address: lease.endpoint.ipv4),
      let handler = try? self.tls.clientHandler(carries: .tcp, expecting: expected)
    {
      secure = NIOLoopBound(handler, eventLoop: client.eventLoop)
      self.count { $0.outboundMTLS += 1 }
    } else {
      secure = nil
    }
    // Both channels live on the accepted connection's event loop, and so do their handlers.
    let (clientSide, serverSide) = RelayHandler.pair()
    let loop = client.eventLoop
    let clientHandler = NIOLoopBound(clientSide, eventLoop: loop)
    let serverHandler = NIOLoopBound(serverSide, eventLoop: loop)
    ClientBootstrap(group: loop)
      .channelOption(
        ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SocketOptionName(Self.soMark)),
        value: SocketOptionValue(Int32(bitPattern: mark))
      )
      .channelOption(.allowRemoteHalfClosure, value: true)
      .connectTimeout(.seconds(5))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let secure { try channel.pipeline.syncOperations.addHandler(secure.value) }
          try channel.pipeline.syncOperations.addHandler(serverHandler.value)
        }
      }
      .connect(to: target.socketAddress)
      .whenComplete { result in
        if let lease {
          // The balancer counts the connection until it closes, or as failed if it never opened.
          self.table.release(.maxPendingRequests, service: lease.service)
          switch result {
          case .success(let channel):
            let metrics = self.metrics
            channel.closeFuture.assumeIsolated().whenComplete { _ in
              self.table.release(.maxConnections, service: lease.service)
              self.finish(lease, success: true)
              metrics.connection(
                to: lease.service, sent: clientHandler.value.bytesRead,
                received: serverHandler.value.bytesRead)
            }
          case .failure:
            self.table.release(.maxConnections, service: lease.service)
            self.finish(lease, success: false)
          }
        }
        switch result {
        case .success(let upstream):
          do {
            // The client may have gone while the far side was dialled: then nobody else would
            // close that connection.
            guard client.isActive else { throw ChannelError.ioOnClosedChannel }
            try client.pipeline.syncOperations.addHandler(clientHandler.value)
            if let initial, initial.readableBytes > 0 {
              client.pipeline.syncOperations.fireChannelRead(NIOAny(initial))
              client.pipeline.syncOperations.fireChannelReadComplete()
            }
            // The client's FIN came while its first bytes were being judged: pass it on now, or
            // the far side waits for more (and this connection with it) until it gives up.
            if inputClosed {
              client.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
            onRelayed?()
            // Reading was held back until the far side was there; from now on the relay's
            // backpressure decides when to read.
            client.setOption(.autoRead, value: true).whenFailure { _ in client.close(promise: nil) }
          } catch {
            client.close(promise: nil)
            upstream.close(promise: nil)
          }
        case .failure:
          self.count { outbound ? ($0.outboundFailed += 1) : ($0.inboundFailed += 1) }
          client.close(promise: nil)
        }
      }
  }

  /// Ends an opaque connection's pick. One that opened counts as a success, one that could not
  /// as a gateway error; one refused before connecting (not `judged`) says nothing of its endpoint.
  private func finish(_ upstream: Upstream, success: Bool, judged: Bool = true) {
    self.table.finish(
      upstream, now: UInt64(MonotonicClock.nanoseconds()), success: success,
      outcome: judged ? (success ? .success : .gatewayError) : nil)
  }

  private func count(_ change: (inout ProxyCounters) -> Void) { self.tally.withLock { change(&$0) } }

  /// SO_MARK (not exported by every libc header).
  static let soMark: Int32 = 36
  /// SO_ORIGINAL_DST, from linux/netfilter_ipv4.h.
  static let soOriginalDestination: Int32 = 80

  /// The destination a redirected connection had before the NAT rule changed it.
  static func originalDestination(_ channel: any Channel) -> EventLoopFuture<EndpointAddress> {
    guard let provider = channel as? any SocketOptionProvider else {
      return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }
    let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
      level: SocketOptionLevel(IPPROTO_IP), name: SocketOptionName(Self.soOriginalDestination))
    return future.map { address in
      EndpointAddress(
        ipv4: UInt32(bigEndian: address.sin_addr.s_addr), port: UInt16(bigEndian: address.sin_port))
    }
  }
}

extension EndpointAddress {
  /// The IPv4 address and port of a socket address, or nil for another family.
  /// Read from the socket address's `sockaddr_in` as it is: no text on the way, since this runs
  /// on every request.
  init?(socketAddress: SocketAddress) {
    guard case .v4(let v4) = socketAddress else { return nil }
    self.init(
      ipv4: UInt32(bigEndian: v4.address.sin_addr.s_addr), port: UInt16(bigEndian: v4.address.sin_port))
  }

  /// The socket address to connect to (no name resolution: it is an address already).
  var socketAddress: SocketAddress {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = self.port.bigEndian
    address.sin_addr.s_addr = self.ipv4.bigEndian
    return SocketAddress(address, host: self.host)
  }

  /// The address alone, `a.b.c.d`.
  var host: String {
    let o = self.octets
    return "\(o.0).\(o.1).\(o.2).\(o.3)"
  }
}

/// Set once, read on every request: whether the proxy is draining.
final class DrainFlag: Sendable {
  private let value = Atomic(false)
  var isSet: Bool { self.value.load(ordering: .relaxed) }
  func set() { self.value.store(true, ordering: .relaxed) }
}

/// Lets the accept closures reach the proxy made after the listeners.
private final class ProxyBox: Sendable {
  private let value = Mutex<SidecarProxy?>(nil)
  var proxy: SidecarProxy? {
    get { self.value.withLock { $0 } }
    set { self.value.withLock { $0 = newValue } }
  }
}

/// A monotonic clock reading for the balancers.
enum MonotonicClock {
  static func nanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
  }
}
