import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import WeftModel

@testable import WeftProxy

/// An endpoint that answers any request with a 101 and, in the same write, its first frame.
private final class EagerUpgrader: ChannelInboundHandler, Sendable {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer
  let answered = Mutex(false)

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !self.answered.withLock({ $0 }) else { return }
    self.answered.withLock { $0 = true }
    let reply =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
      + "FIRST-FRAME"
    context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
  }
}

/// Collects what comes back to the client.
private final class Received: ChannelInboundHandler, Sendable {
  typealias InboundIn = ByteBuffer
  let text = Mutex("")

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let buffer = self.unwrapInboundIn(data)
    self.text.withLock { $0 += String(buffer: buffer) }
  }
}

@Suite("upgrades: the bytes that come with a 101 reach the client")
struct UpgradeTunnelTests {
  /// The endpoint's first frame arrives in the same read as its 101 (as it does under load):
  /// the decoder hands it on when it leaves, and the tunnel must flush it then.
  @Test func aFrameSentWithThe101IsRelayedAtOnce() async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    let endpoint = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(EagerUpgrader())
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    defer { endpoint.close(promise: nil) }
    let table = loopbackServiceTable("ws", targetPort: endpoint.localAddress!.port!)
    let metrics = TrafficMetrics(source: "test")
    let proxy = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try HTTPPipeline.configureServer(channel)
          try channel.pipeline.syncOperations.addHandler(
            HTTPForwarder(
              table: table, metrics: metrics, draining: DrainFlag(), service: "ws",
              address: IPv4AddressValue.vip, port: 80, mark: 0))
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    defer { proxy.close(promise: nil) }
    let received = Received()
    let client = try await ClientBootstrap(group: group)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(received) }
      }
      .connect(to: proxy.localAddress!).get()
    defer { client.close(promise: nil) }
    let request =
      "GET /chat HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    try await client.writeAndFlush(ByteBuffer(string: request))
    for _ in 0..<100 where !received.text.withLock({ $0.contains("FIRST-FRAME") }) {
      try await Task.sleep(for: .milliseconds(20))
    }
    let text = received.text.withLock { $0 }
    #expect(text.hasPrefix("HTTP/1.1 101"), "\(text)")
    #expect(text.hasSuffix("FIRST-FRAME"), "the frame that came with the 101 was relayed: \(text)")
  }
}

private enum IPv4AddressValue {
  static let vip: UInt32 = 100 << 24 | 64 << 16 | 0 << 8 | 9
}
