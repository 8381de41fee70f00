import NIOCore
import Testing
import WeftWire

@Suite struct ARPTests {
  @Test func requestAndReply() throws {
    let req = ARPPacket.request(senderMAC: Sample.macA, senderIP: Sample.v4A, targetIP: Sample.v4B)
    let frame = req.frame
    #expect(frame.destination == .broadcast)
    #expect(frame.etherType == .arp)
    #expect(
      hexString(frame.payload)
        == "000108000604000102000000000a0a000001" + "0000000000000a000002")
    let decoded = try ARPPacket(decoding: try EthernetFrame(decoding: frame.bytes).payload)
    #expect(decoded == req)

    let reply = ARPPacket.reply(to: decoded, with: Sample.macB)
    #expect(reply.operation == .reply)
    #expect(reply.senderIP == Sample.v4B && reply.senderMAC == Sample.macB)
    #expect(reply.targetIP == Sample.v4A && reply.targetMAC == Sample.macA)
    #expect(reply.frame.destination == Sample.macA)
    #expect(try ARPPacket(decoding: reply.frame.payload) == reply)
  }

  @Test func paddingIgnoredAndMalformedRejected() {
    var padded = ByteBuffer()
    let req = ARPPacket.request(senderMAC: Sample.macA, senderIP: Sample.v4A, targetIP: Sample.v4B)
    req.write(to: &padded)
    padded.writeRepeatingByte(0, count: 18)
    #expect((try? ARPPacket(decoding: padded)) == req)
    var exact = ByteBuffer()
    req.write(to: &exact)
    expectEveryPrefixThrows(exact) { b throws(WireError) in try ARPPacket(decoding: b) }
    var ipv6ish = exact
    ipv6ish.setInteger(UInt16(0x86dd), at: 2)
    expectWireError(.unsupported) { () throws(WireError) in try ARPPacket(decoding: ipv6ish) }
  }
}
