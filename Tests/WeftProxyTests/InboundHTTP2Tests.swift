import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import Testing
import WeftIdentity
import WeftModel

@testable import WeftProxy

/// A workload's HTTP/2 server answering every stream with its path.
private final class PathAnswer: ChannelInboundHandler, Sendable {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard case .head(let head) = self.unwrapInboundIn(data) else { return }
    let body = ByteBuffer(string: head.uri)
    let headers = HTTPHeaders([("content-length", String(body.readableBytes))])
    context.write(
      self.wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))),
      promise: nil)
    context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
  }
}

/// A workload's HTTP/2 server echoing each request body as it comes, part by part.
private final class BodyEcho: ChannelInboundHandler, Sendable {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch self.unwrapInboundIn(data) {
    case .head:
      context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok))), promise: nil)
    case .body(let part):
      context.write(self.wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
    case .end:
      context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

/// A workload that answers `/bad` with an upper-case field name (which HTTP/2 forbids) and
/// anything else with 200, at the frame level.
private final class ForbiddenFieldAnswer: ChannelInboundHandler, Sendable {
  typealias InboundIn = HTTP2Frame.FramePayload
  typealias OutboundOut = HTTP2Frame.FramePayload

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard case .headers(let request) = self.unwrapInboundIn(data) else { return }
    var headers = HPACKHeaders([(":status", "200")])
    if request.headers.first(name: ":path") == "/bad" { headers.add(name: "X-Bad", value: "1") }
    context.writeAndFlush(
      self.wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
  }
}

@Suite("inbound HTTP/2: each stream is held to the access policies by its path")
struct InboundHTTP2Tests {
  @Test func aDeniedPathGets403OnItsStreamAndTheOthersPass() async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    let workload = try await Self.workload(group: group)
    defer { workload.close(promise: nil) }
    let port = workload.localAddress!.port!
    let table = ServiceTable()
    let noAdmin = AccessPolicySpec(
      service: "backend", action: .deny, rules: [AccessRule(to: AccessOperation(paths: ["/admin*"]))])
    table.apply(
      ProxySnapshot(
        version: 1,
        services: [
          ProxyService(
            name: "backend", vip: "100.64.0.9",
            ports: [ServicePort(port: 80, targetPort: port, protocol: .http2)],
            balancer: ServiceBalancing(), endpoints: ["127.0.0.1"])
        ],
        policies: [ProxyAccessPolicy(name: "no-admin", spec: noAdmin)]))
    let metrics = TrafficMetrics(source: "b1")
    let caller = SPIFFEID(trustDomain: "weft.test", namespace: "blue", serviceAccount: "client")!
    // The sidecar's inbound side, as it is once the caller's mutual TLS (ALPN weft/h2) is done.
    let inbound = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try HTTP2Session.serve(
            channel, table: table, metrics: metrics, address: 0x7f00_0001, port: UInt16(port), mark: 0,
            inbound: true, peer: caller, service: "backend")
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    defer { inbound.close(promise: nil) }
    // Independent HTTP/2 clients: h2load sends both paths twice over one connection, curl
    // shows the refusal's answer.
    let base = "http://127.0.0.1:\(inbound.localAddress!.port!)"
    let load = try await run(
      "/usr/bin/h2load", ["-n", "4", "-c", "1", "\(base)/hello", "\(base)/admin/users"])
    #expect(load.contains("status codes: 2 2xx, 0 3xx, 2 4xx, 0 5xx"), "\(load)")
    #expect(load.contains("4 done"), "every stream answered on the one connection: \(load)")
    let denied = try await run(
      "/usr/bin/curl", ["-sS", "--http2-prior-knowledge", "-w", "|%{http_code}", "\(base)/admin/users"])
    #expect(
      denied.hasPrefix("access denied: DENY policy 'no-admin' rule 0") && denied.hasSuffix("|403"),
      "\(denied)")
    let allowed = try await run("/usr/bin/curl", ["-sS", "--http2-prior-knowledge", "\(base)/hello"])
    #expect(allowed == "/hello")
    let decisions = metrics.decisionCounts
    #expect(decisions[.init(family: "policy", destination: "backend", kind: "allow")] == 3)
    #expect(decisions[.init(family: "policy", destination: "backend", kind: "deny")] == 3)
  }

  /// Regression: each relayed stream used to end with a RST_STREAM (CANCEL) to the next hop,
  /// and NIO's rapid-reset guard on the inbound side closes a connection after 200 of them in
  /// 30 s, so one client connection stalled at its 201st stream.
  @Test func threeHundredStreamsInTurnCrossBothSidecarsOnOneConnection() async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    let workload = try await Self.workload(group: group)
    defer { workload.close(promise: nil) }
    // The caller's sidecar balances each stream to the server's sidecar (plaintext here).
    let pair = try await Self.sidecarPair(group: group, workloadPort: workload.localAddress!.port!)
    defer { pair.close() }
    let load = try await run(
      "/usr/bin/h2load",
      ["-n", "300", "-c", "1", "-m", "1", "-N", "5", "http://127.0.0.1:\(pair.port)/x"])
    #expect(load.contains("300 succeeded, 0 failed"), "\(load)")
  }

  /// Flow control of the frame relay: bodies far larger than the protocol's initial windows
  /// (64 KiB per connection, the sidecar's 1 MiB per stream) cross both sidecars both ways,
  /// and so do many concurrent streams on one connection, each answered whole.
  @Test func largeBodiesAndManyStreamsCrossBothSidecarsWhole() async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    let workload = try await Self.workload(group: group, echo: true)
    defer { workload.close(promise: nil) }
    let pair = try await Self.sidecarPair(group: group, workloadPort: workload.localAddress!.port!)
    defer { pair.close() }
    let url = "http://127.0.0.1:\(pair.port)/echo"
    // 6 MiB of varied bytes up, echoed back down on the same stream.
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-h2-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    var body = Data(count: 6 << 20)
    body.withUnsafeMutableBytes { bytes in
      var state: UInt64 = 0x9E37_79B9_7F4A_7C15
      for i in bytes.indices {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes[i] = UInt8(truncatingIfNeeded: state >> 56)
      }
    }
    let sent = directory.appendingPathComponent("up.bin")
    let echoed = directory.appendingPathComponent("down.bin")
    try body.write(to: sent)
    let status = try await run(
      "/usr/bin/curl",
      [
        "-sS", "-m", "60", "--http2-prior-knowledge", "--data-binary", "@\(sent.path)", "-o", echoed.path,
        "-w",
        "%{http_code}", url,
      ])
    #expect(status == "200")
    #expect(FileManager.default.contents(atPath: echoed.path) == body, "the echo came back whole")
    // 400 streams, 64 at a time on one connection, each with a 64 KiB body and its echo:
    // 25 MiB each way through connection windows of 4 MiB, which only credit given back
    // keeps open.
    let chunk = directory.appendingPathComponent("chunk.bin")
    try body.prefix(64 << 10).write(to: chunk)
    let load = try await run(
      "/usr/bin/h2load", ["-n", "400", "-c", "1", "-m", "64", "-N", "20", "-d", chunk.path, url])
    #expect(load.contains("400 succeeded, 0 failed"), "\(load)")
    #expect(load.contains("status codes: 400 2xx"), "\(load)")
  }

  /// Header blocks are checked once per sidecar, on the client's connection: a response with a
  /// field name HTTP/2 forbids (upper case), from a workload that does not check its own, gets
  /// its stream reset on its way out of the server's sidecar, and the caller a 502 from its
  /// own; the next stream on the same connections is answered.
  @Test func aResponseWithAForbiddenFieldIsStoppedAndTheOthersPass() async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    let workload = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          var unchecked = HTTP2Session.connection
          unchecked.headerBlockValidation = .disabled
          _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: unchecked, streamConfiguration: HTTP2Session.stream
          ) { stream in
            stream.eventLoop.makeCompletedFuture {
              try stream.pipeline.syncOperations.addHandler(ForbiddenFieldAnswer())
            }
          }
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    defer { workload.close(promise: nil) }
    let pair = try await Self.sidecarPair(group: group, workloadPort: workload.localAddress!.port!)
    defer { pair.close() }
    let base = "http://127.0.0.1:\(pair.port)"
    // One connection, one stream after the other (h2load; curl 7.88 cannot reuse an HTTP/2
    // connection for a second URL, against any server).
    let load = try await run(
      "/usr/bin/h2load", ["-n", "4", "-c", "1", "-m", "1", "\(base)/bad", "\(base)/good"])
    #expect(load.contains("status codes: 2 2xx, 0 3xx, 0 4xx, 2 5xx"), "\(load)")
    let refused = try await run(
      "/usr/bin/curl", ["-sS", "-m", "20", "--http2-prior-knowledge", "-w", "|%{http_code}", "\(base)/bad"])
    #expect(refused == "the endpoint reset the stream\n|502", "\(refused)")
  }

  /// An inbound sidecar in front of the workload on `workloadPort` and an outbound one that
  /// balances to it (plaintext between them), on loopback.
  static func sidecarPair(group: any EventLoopGroup, workloadPort: Int) async throws -> SidecarPair {
    let caller = SPIFFEID(trustDomain: "weft.test", namespace: "blue", serviceAccount: "client")!
    let serverTable = ServiceTable()
    let inbound = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try HTTP2Session.serve(
            channel, table: serverTable, metrics: TrafficMetrics(source: "b1"), address: 0x7f00_0001,
            port: UInt16(workloadPort), mark: 0, inbound: true, peer: caller, service: "backend")
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    let clientTable = loopbackServiceTable(
      "backend", targetPort: inbound.localAddress!.port!, protocol: .http2)
    let outbound = try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try HTTP2Session.serve(
            channel, table: clientTable, metrics: TrafficMetrics(source: "client"), address: 0x6440_0009,
            port: 80, mark: 0)
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    return SidecarPair(inbound: inbound, outbound: outbound)
  }

  /// Both sidecars' listeners; clients call the outbound one's `port`.
  struct SidecarPair {
    let inbound: any Channel
    let outbound: any Channel
    var port: Int { self.outbound.localAddress!.port! }
    func close() {
      self.inbound.close(promise: nil)
      self.outbound.close(promise: nil)
    }
  }

  /// A workload's HTTP/2 server answering every stream with its path (or echoing its body).
  static func workload(group: any EventLoopGroup, echo: Bool = false) async throws -> any Channel {
    try await ServerBootstrap(group: group)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: HTTP2Session.connection,
            streamConfiguration: HTTP2Session.stream
          ) { stream in
            stream.eventLoop.makeCompletedFuture {
              try stream.pipeline.syncOperations.addHandlers([
                HTTP2FramePayloadToHTTP1ServerCodec(), echo ? BodyEcho() : PathAnswer(),
              ])
            }
          }
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
  }

  /// Runs a client and returns what it printed.
  func run(_ path: String, _ arguments: [String]) async throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
      process.terminationHandler = { _ in done.resume() }
      do { try process.run() } catch { done.resume(throwing: error) }
    }
    return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  }
}
