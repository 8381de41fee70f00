import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import Testing
import WeftIdentity

@testable import WeftProxy

/// Echoes what it reads, and records the ALPN protocol the handshake agreed.
private final class EchoAfterHandshake: ChannelInboundHandler, Sendable {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer
  let alpn = Mutex<String?>(nil)
  let peer = Mutex<String?>(nil)

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
      self.alpn.withLock { $0 = negotiated }
      let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
      self.peer.withLock { $0 = tls.flatMap { MeshTLS.peerIdentity(of: $0) }?.uri }
    }
    context.fireUserInboundEventTriggered(event)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    context.writeAndFlush(data, promise: nil)
  }
}

/// Collects what the server sends back, and how the connection ended.
private final class Collector: ChannelInboundHandler, Sendable {
  typealias InboundIn = ByteBuffer
  let received = Mutex("")
  let failed = Mutex<String?>(nil)

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let buffer = self.unwrapInboundIn(data)
    self.received.withLock { $0 += String(buffer: buffer) }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    self.failed.withLock { $0 = "\(error)" }
    context.close(promise: nil)
  }
}

@Suite("mesh TLS: sidecars verify each other's chain and SPIFFE identity")
struct MeshTLSTests {
  let ca: CertificateAuthority
  let bundlePEM: String

  init() throws {
    self.ca = try CertificateAuthority.generate(trustDomain: "weft.test")
    self.bundlePEM = try TrustBundle(roots: [self.ca.certificate]).pem()
  }

  func tls(_ account: String, by authority: CertificateAuthority? = nil) throws -> MeshTLS {
    let (key, request) = try WorkloadCredentials.request(for: account)
    let identity = SPIFFEID(trustDomain: "weft.test", namespace: "blue", serviceAccount: account)!
    let issued = try (authority ?? self.ca).issue(request, for: identity)
    let tls = MeshTLS()
    try tls.update(
      chainPEM: try issued.pem(), keyPEM: try key.serializeAsPEM().pemString, bundlePEM: self.bundlePEM)
    return tls
  }

  /// Runs one exchange: a server with `server`'s credentials, a client expecting `expected`.
  func exchange(server: MeshTLS, client: MeshTLS, expected: String) async throws -> (
    echoed: String, peer: String?, alpn: String?
  ) {
    let group = MultiThreadedEventLoopGroup.singleton
    let echo = EchoAfterHandshake()
    let listener = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let handler = server.serverHandler()!
          try channel.pipeline.syncOperations.addHandler(handler)
          try channel.pipeline.syncOperations.addHandler(echo)
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    defer { listener.close(promise: nil) }
    let collector = Collector()
    let channel = try await ClientBootstrap(group: group)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(
            try client.clientHandler(carries: .http1, expecting: expected)!)
          try channel.pipeline.syncOperations.addHandler(collector)
        }
      }
      .connect(to: listener.localAddress!).get()
    channel.writeAndFlush(ByteBuffer(string: "ping"), promise: nil)
    for _ in 0..<100 where collector.received.withLock({ $0 }).isEmpty && channel.isActive {
      try await Task.sleep(for: .milliseconds(20))
    }
    channel.close(promise: nil)
    return (collector.received.withLock { $0 }, echo.peer.withLock { $0 }, echo.alpn.withLock { $0 })
  }

  @Test func sidecarsWithTheRightIdentitiesTalk() async throws {
    let server = try tls("backend")
    let client = try tls("client")
    #expect(server.identity?.uri == "spiffe://weft.test/ns/blue/sa/backend")
    let result = try await exchange(
      server: server, client: client, expected: "spiffe://weft.test/ns/blue/sa/backend")
    #expect(result.echoed == "ping")
    #expect(result.peer == "spiffe://weft.test/ns/blue/sa/client", "the server learned who called")
    #expect(result.alpn == "weft/http1")
  }

  @Test func aWrongIdentityOrAnotherCAIsRefused() async throws {
    let client = try tls("client")
    let wrong = try await exchange(
      server: try tls("db"), client: client, expected: "spiffe://weft.test/ns/blue/sa/backend")
    #expect(wrong.echoed.isEmpty, "the client refused an endpoint naming another identity")
    let stranger = try CertificateAuthority.generate(trustDomain: "weft.test")
    let impostor = try tls("backend", by: stranger)
    let foreign = try await exchange(
      server: impostor, client: client, expected: "spiffe://weft.test/ns/blue/sa/backend")
    #expect(foreign.echoed.isEmpty && foreign.peer == nil, "neither side trusts the other CA")
    let foreignClient = try await exchange(
      server: try tls("backend"), client: impostor, expected: "spiffe://weft.test/ns/blue/sa/backend")
    #expect(
      foreignClient.echoed.isEmpty && foreignClient.peer == nil, "the server refused a client of another CA")
  }

  @Test func withoutCredentialsThereIsNoTLS() throws {
    let tls = MeshTLS()
    #expect(!tls.isReady && tls.serverHandler() == nil)
    #expect(try tls.clientHandler(carries: .tcp, expecting: "spiffe://x/ns/a/sa/b") == nil)
    #expect(throws: (any Error).self) { try tls.update(chainPEM: "nope", keyPEM: "nope", bundlePEM: "nope") }
  }

  /// Credentials for `account` signed by `authority`, trusting `roots`.
  func credentials(
    _ account: String, by authority: CertificateAuthority, trusting roots: [CertificateAuthority]
  )
    throws -> (chain: String, key: String, bundle: String)
  {
    let (key, request) = try WorkloadCredentials.request(for: account)
    let identity = SPIFFEID(trustDomain: "weft.test", namespace: "blue", serviceAccount: account)!
    let issued = try authority.issue(request, for: identity)
    return (
      try issued.pem(), try key.serializeAsPEM().pemString,
      try TrustBundle(roots: roots.map(\.certificate)).pem()
    )
  }

  @Test func aStreamOfRequestsCrossesACARotationWithoutAnError() async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    let fresh = try CertificateAuthority.generate(trustDomain: "weft.test")
    let server = MeshTLS()
    let client = MeshTLS()
    func load(
      _ tls: MeshTLS, _ account: String, by authority: CertificateAuthority,
      trusting roots: [CertificateAuthority]
    )
      throws
    {
      let c = try credentials(account, by: authority, trusting: roots)
      #expect(try tls.update(chainPEM: c.chain, keyPEM: c.key, bundlePEM: c.bundle))
      #expect(
        try !tls.update(chainPEM: c.chain, keyPEM: c.key, bundlePEM: c.bundle), "the same again is no change")
    }
    try load(server, "backend", by: self.ca, trusting: [self.ca])
    try load(client, "client", by: self.ca, trusting: [self.ca])
    let echo = EchoAfterHandshake()
    let listener = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(server.serverHandler()!)
          try channel.pipeline.syncOperations.addHandler(echo)
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    defer { listener.close(promise: nil) }
    func connect() async throws -> (any Channel, Collector) {
      let collector = Collector()
      let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
              try client.clientHandler(carries: .http1, expecting: "spiffe://weft.test/ns/blue/sa/backend")!)
            try channel.pipeline.syncOperations.addHandler(collector)
          }
        }
        .connect(to: listener.localAddress!).get()
      return (channel, collector)
    }
    /// One message over `channel`, true when it came back.
    func roundTrip(_ channel: any Channel, _ collector: Collector, _ message: String) async throws -> Bool {
      let expected = collector.received.withLock { $0 } + message
      channel.writeAndFlush(ByteBuffer(string: message), promise: nil)
      for _ in 0..<200 where collector.received.withLock({ $0 }) != expected && channel.isActive {
        try await Task.sleep(for: .milliseconds(5))
      }
      return collector.received.withLock { $0 } == expected
    }
    // A long-lived connection, and a new connection per request, through every step of a
    // rotation: both roots trusted, the new CA signs the server, then the client, then the old
    // root is retired.
    let (long, longCollector) = try await connect()
    var failures: [String] = []
    let steps: [(String, () throws -> Void)] = [
      ("start", {}),
      (
        "both roots",
        {
          try load(server, "backend", by: self.ca, trusting: [fresh, self.ca])
          try load(client, "client", by: self.ca, trusting: [fresh, self.ca])
        }
      ),
      (
        "server renewed by the new CA",
        { try load(server, "backend", by: fresh, trusting: [fresh, self.ca]) }
      ),
      (
        "client renewed by the new CA", { try load(client, "client", by: fresh, trusting: [fresh, self.ca]) }
      ),
      (
        "old root retired",
        {
          try load(server, "backend", by: fresh, trusting: [fresh])
          try load(client, "client", by: fresh, trusting: [fresh])
        }
      ),
    ]
    for (step, change) in steps {
      try change()
      for n in 0..<5 {
        let (channel, collector) = try await connect()
        if try await !roundTrip(channel, collector, "r\(n)") {
          failures.append(
            "\(step): a new connection failed (\(collector.failed.withLock { $0 } ?? "no answer"))")
        }
        channel.close(promise: nil)
      }
      if try await !roundTrip(long, longCollector, "[\(step)]") {
        failures.append("\(step): the long-lived connection")
      }
    }
    long.close(promise: nil)
    #expect(failures.isEmpty, "\(failures)")
    #expect(echo.peer.withLock { $0 } == "spiffe://weft.test/ns/blue/sa/client")
    // And the point of retiring: a certificate of the old CA is now refused.
    try load(client, "client", by: self.ca, trusting: [fresh])
    let (stale, staleCollector) = try await connect()
    #expect(try await !roundTrip(stale, staleCollector, "old"), "the retired root's certificate is refused")
    stale.close(promise: nil)
  }
}
