import NIOCore
import NIOPosix
import Testing
import WeftModel
import WeftWire

@testable import WeftAgent

@Suite("the agent's resolver")
struct AgentDNSTests {
  @Test func weftNamesAreServicesThenWorkloadsElseNowhere() throws {
    var service = try Resource(
      kind: .service, name: "backend",
      spec: ServiceSpec(network: "blue", selector: ["app": "b"], ports: [ServicePort(port: 80)]))
    service.status = try JSONValue(encoding: ServiceStatus(vip: "100.64.0.3"))
    let workload = try Resource(
      kind: .workload, name: "web1", spec: WorkloadSpec(network: "blue", host: "h", address: "100.96.1.5"))
    #expect(
      AgentDNS.resolve("backend.weft", services: [service], workloads: [workload])
        == .some([IPv4Address("100.64.0.3")!]))
    #expect(
      AgentDNS.resolve("web1.weft", services: [service], workloads: [workload])
        == .some([IPv4Address("100.96.1.5")!]))
    #expect(AgentDNS.resolve("nosuch.weft", services: [service], workloads: [workload]) == .some(nil))
    #expect(AgentDNS.resolve("example.org", services: [service], workloads: [workload]) == nil)
  }

  @Test func upstreamsAreReadFromResolvConfWithoutLoopback() throws {
    let path = "/tmp/weft-resolv-\(getpid()).conf"
    try "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch x\nnameserver ::1\n".write(
      toFile: path, atomically: true, encoding: .utf8)
    defer { unlink(path) }
    #expect(AgentDNS.systemUpstreams(path).map { $0.ipAddress } == ["192.0.2.1"])
  }

  @Test func otherNamesAreForwardedAndTheUpstreamAnswerReturnedAsItIs() async throws {
    // A fake upstream on loopback that answers every query with a fixed A record.
    let upstream = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(FakeUpstream())
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    defer { upstream.close(promise: nil) }
    var query = ByteBuffer(bytes: [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
    query.writeBytes([7] + Array("example".utf8) + [3] + Array("org".utf8) + [0, 0, 1, 0, 1])
    let answer = await DNSResponder.forward(
      query, to: [upstream.localAddress!], group: MultiThreadedEventLoopGroup.singleton)
    let parsed = try #require(answer)
    #expect(parsed.getInteger(at: 0, as: UInt16.self) == 0x1234)
    #expect(parsed.getBytes(at: parsed.writerIndex - 4, length: 4) == [192, 0, 2, 7])
    // An upstream that never answers gives nil after its timeout (the caller says SERVFAIL).
    let silent = try SocketAddress(ipAddress: "127.0.0.1", port: 9)
    #expect(
      await DNSResponder.forward(query, to: [silent], group: MultiThreadedEventLoopGroup.singleton) == nil)
  }
}

/// Answers any query with its question and one A record 192.0.2.7.
final class FakeUpstream: ChannelInboundHandler {
  typealias InboundIn = AddressedEnvelope<ByteBuffer>
  typealias OutboundOut = AddressedEnvelope<ByteBuffer>

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let envelope = self.unwrapInboundIn(data)
    guard let query = try? DNSMessage.parseQuery(envelope.data) else { return }
    let answer = DNSMessage.answer(query, addresses: [IPv4Address("192.0.2.7")!])
    context.writeAndFlush(
      self.wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: answer)),
      promise: nil)
  }
}
