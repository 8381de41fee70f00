import NIOCore
import NIOEmbedded
import NIOTLS
import Testing

@testable import WeftProxy

@Suite("TLS inbound gate: hands a mesh connection on, then leaves and is freed")
struct TLSInboundGateTests {
  @Test func bytesHeldUntilReadyGoOnAndTheGateIsFreed() throws {
    weak var left: TLSInboundGate?
    let channel = EmbeddedChannel()
    var alpn: String?
    do {
      let gate = TLSInboundGate { negotiated, gate in
        alpn = negotiated
        gate.release()
      }
      left = gate
      try channel.pipeline.syncOperations.addHandler(gate)
      try channel.writeInbound(ByteBuffer(string: "early"))
      #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "held before the handshake")
      channel.pipeline.fireUserInboundEventTriggered(
        TLSUserEvent.handshakeCompleted(negotiatedProtocol: "weft/http1"))
    }
    #expect(alpn == "weft/http1")
    #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "early"))
    // A gate that kept its context would keep itself, and the connection, alive: 33 KB for
    // every mesh connection a sidecar ever accepted.
    #expect(left == nil, "the gate is freed once it left the pipeline")
    _ = try channel.finish()
  }
}
