import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import WeftLinux

@testable import WeftSidecar

/// The sidecar's own client for its agent's unix socket, against a real NIO HTTP server there.
@Suite struct AgentClientTests {
  /// An HTTP/1.1 server on a unix socket that answers every request with `status` and the
  /// request's target as the body, or never answers when `silent`.
  final class Answerer: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let status: HTTPResponseStatus
    let silent: Bool
    init(status: HTTPResponseStatus, silent: Bool) {
      self.status = status
      self.silent = silent
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      guard case .head(let head) = self.unwrapInboundIn(data), !self.silent else { return }
      let body = ByteBuffer(string: head.uri)
      var headers = HTTPHeaders()
      headers.add(name: "content-length", value: String(body.readableBytes))
      context.write(
        self.wrapOutboundOut(
          .head(HTTPResponseHead(version: .http1_1, status: self.status, headers: headers))), promise: nil)
      context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
      context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }
  }

  static func serve(status: HTTPResponseStatus = .ok, silent: Bool = false) async throws -> (
    any Channel, String
  ) {
    let path = "/tmp/weft-agentclient-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    unlink(path)
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(Answerer(status: status, silent: silent))
        }
      }
      .bind(unixDomainSocketPath: path).get()
    return (channel, path)
  }

  @Test func getsTheAnswerWithItsStatusAndBody() async throws {
    let (server, path) = try await Self.serve(status: .notFound)
    defer {
      server.close(promise: nil)
      unlink(path)
    }
    let target = "/v1/proxy/snapshot?workload=\(AgentClient.encode("web 1/a"))&after=3"
    let response = try await AgentClient.get(
      socket: path, target: target, timeout: .seconds(5), group: MultiThreadedEventLoopGroup.singleton)
    #expect(response.status == .notFound)
    #expect(String(buffer: response.body) == "/v1/proxy/snapshot?workload=web%201%2Fa&after=3")
  }

  @Test func anAgentThatDoesNotAnswerTimesOutNamingTheRequest() async throws {
    let (server, path) = try await Self.serve(silent: true)
    defer {
      server.close(promise: nil)
      unlink(path)
    }
    let error = await #expect(throws: AgentClient.Failure.self) {
      try await AgentClient.get(
        socket: path, target: "/v1/proxy/identity", timeout: .milliseconds(200),
        group: MultiThreadedEventLoopGroup.singleton)
    }
    #expect(error?.description.contains("did not answer /v1/proxy/identity") == true)
  }

  @Test func aMissingSocketIsNamed() async throws {
    let error = await #expect(throws: AgentClient.Failure.self) {
      try await AgentClient.get(
        socket: "/tmp/weft-no-such-agent.sock", target: "/", timeout: .seconds(1),
        group: MultiThreadedEventLoopGroup.singleton)
    }
    #expect(error?.description.contains("/tmp/weft-no-such-agent.sock") == true)
  }

  @Test func encodingKeepsOnlyUnreservedCharacters() {
    #expect(AgentClient.encode("web-1.a_b~") == "web-1.a_b~")
    #expect(AgentClient.encode("a b&c=d/é") == "a%20b%26c%3Dd%2F%C3%A9")
  }

  @Test func nftNamesWhatItRefused() throws {
    // A ruleset that does not parse changes nothing, here or anywhere.
    try #require(NFTables.candidates.contains(where: { access($0, X_OK) == 0 }), "nft is installed")
    let error = #expect(throws: NFTables.Failure.self) { try NFTables.apply("this is not a ruleset\n") }
    #expect(error?.description.contains("nft refused the rules") == true)
    #expect(error?.description.contains("syntax error") == true)
  }
}
