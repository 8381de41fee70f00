import Foundation
import NIOCore
import NIOPosix
import WeftModel
import WeftWire

/// The agent's resolver for its workloads: `<service>.weft` is the service's virtual IP,
/// `<workload>.weft` the workload's address, any other `.weft` name does not exist, and every
/// other name goes to the upstream resolvers (those of the agent's own /etc/resolv.conf), whose
/// answer is passed back as it is. Served on UDP port 53 of the host's namespace, so the gateway
/// address of every network reaches it.
public final class AgentDNS: Sendable {
  /// The bound channel.
  public let channel: any Channel

  private init(channel: any Channel) { self.channel = channel }

  /// Binds `host:port` and answers from `agent`'s view of services and workloads.
  public static func start(
    host: String = "0.0.0.0", port: Int = 53, agent: Agent,
    upstreams: [SocketAddress] = AgentDNS.systemUpstreams(),
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) async throws -> AgentDNS {
    let channel = try await DatagramBootstrap(group: group)
      .channelOption(.socketOption(.so_reuseaddr), value: 1)
      .bind(host: host, port: port).get()
    let listener = AgentDNS(channel: channel)
    try await channel.eventLoop.submit {
      try channel.pipeline.syncOperations.addHandler(
        DNSHandler(agent: agent, upstreams: upstreams, group: group))
    }.get()
    return listener
  }

  /// Closes the listener.
  public func stop() async { try? await self.channel.close() }

  /// The name servers of /etc/resolv.conf (IPv4, port 53), loopback ones left out: they would be
  /// this namespace's own, not the host's.
  public static func systemUpstreams(_ path: String = "/etc/resolv.conf") -> [SocketAddress] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { line -> SocketAddress? in
      let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
      guard fields.count >= 2, fields[0] == "nameserver", let address = IPv4Address(String(fields[1])),
        address.octets[0] != 127
      else { return nil }
      return try? SocketAddress(ipAddress: address.description, port: 53)
    }
  }

  /// What a `.weft` name is, from the agent's resources: nil when it is not a `.weft` name.
  public static func resolve(_ name: String, services: [Resource], workloads: [Resource]) -> [IPv4Address]?? {
    guard name.hasSuffix(".weft") else { return nil }
    let short = String(name.dropLast(".weft".count))
    if let service = services.first(where: { $0.metadata.name == short }),
      let status = (try? service.decodeStatus(ServiceStatus.self)) ?? nil, let vip = IPv4Address(status.vip)
    {
      return .some([vip])
    }
    if let workload = workloads.first(where: { $0.metadata.name == short }),
      let address = (try? workload.decodeSpec(WorkloadSpec.self))?.address.flatMap({ IPv4Address($0) })
    {
      return .some([address])
    }
    return .some(nil)
  }
}

/// Answers each query: from the agent for `.weft`, else through an upstream.
final class DNSHandler: ChannelInboundHandler {
  typealias InboundIn = AddressedEnvelope<ByteBuffer>
  typealias OutboundOut = AddressedEnvelope<ByteBuffer>

  private let agent: Agent
  private let upstreams: [SocketAddress]
  private let group: any EventLoopGroup

  init(agent: Agent, upstreams: [SocketAddress], group: any EventLoopGroup) {
    self.agent = agent
    self.upstreams = upstreams
    self.group = group
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let envelope = self.unwrapInboundIn(data)
    let channel = context.channel
    let reply: @Sendable (ByteBuffer) -> Void = { bytes in
      channel.writeAndFlush(
        AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: bytes), promise: nil)
    }
    let query: DNSQuery
    do {
      query = try DNSMessage.parseQuery(envelope.data)
    } catch {
      if let id = envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt16.self) {
        reply(DNSMessage.formatError(id: id))
      }
      return
    }
    let agent = self.agent
    let upstreams = self.upstreams
    let group = self.group
    let data = envelope.data
    Task {
      await DNSResponder.respond(
        query, data: data, agent: agent, upstreams: upstreams, group: group, reply: reply)
    }
  }

}

/// The asynchronous half of answering a query.
enum DNSResponder {
  static func respond(
    _ query: DNSQuery, data: ByteBuffer, agent: Agent, upstreams: [SocketAddress], group: any EventLoopGroup,
    reply: @Sendable (ByteBuffer) -> Void
  ) async {
    let resolved: [IPv4Address]?? = await agent.resolve(query.question.name)
    switch resolved {
    case .none:
      if let answer = await Self.forward(data, to: upstreams, group: group) {
        reply(answer)
      } else {
        reply(DNSMessage.answer(query, code: .serverFailure))
      }
    case .some(.none):
      reply(DNSMessage.answer(query, code: .nameError))
    case .some(.some(let addresses)):
      // A name we know: its address for A, no data for other types.
      reply(DNSMessage.answer(query, addresses: query.question.type == DNSQuestion.typeA ? addresses : []))
    }
  }

  /// Sends the query as it came to each upstream in turn (2 s each); the first answer wins.
  static func forward(_ query: ByteBuffer, to upstreams: [SocketAddress], group: any EventLoopGroup) async
    -> ByteBuffer?
  {
    for upstream in upstreams {
      do {
        let channel = try await DatagramBootstrap(group: group)
          .bind(host: upstream.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
          .flatMapThrowing { channel -> (any Channel, EventLoopFuture<ByteBuffer>) in
            let answer = channel.eventLoop.makePromise(of: ByteBuffer.self)
            try channel.pipeline.syncOperations.addHandler(FirstDatagram(answer))
            return (channel, answer.futureResult)
          }.get()
        defer { channel.0.close(promise: nil) }
        try await channel.0.writeAndFlush(AddressedEnvelope(remoteAddress: upstream, data: query))
        let timeout = channel.0.eventLoop.scheduleTask(in: .seconds(2)) { channel.0.close(promise: nil) }
        defer { timeout.cancel() }
        return try await channel.1.get()
      } catch {
        continue
      }
    }
    return nil
  }
}

/// Completes a promise with the first datagram a channel receives (or fails it on close).
final class FirstDatagram: ChannelInboundHandler {
  typealias InboundIn = AddressedEnvelope<ByteBuffer>
  private let promise: EventLoopPromise<ByteBuffer>

  init(_ promise: EventLoopPromise<ByteBuffer>) { self.promise = promise }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    self.promise.succeed(self.unwrapInboundIn(data).data)
  }

  func channelInactive(context: ChannelHandlerContext) {
    self.promise.fail(ChannelError.ioOnClosedChannel)
  }
}
