import NIOCore
import Testing
import WeftWire

@Suite struct EthernetTests {
  @Test func roundTripUntagged() throws {
    let frame = EthernetFrame(
      destination: .broadcast, source: Sample.macA, etherType: .arp, payload: ByteBuffer(bytes: [1, 2, 3]))
    let bytes = frame.bytes
    #expect(hexString(bytes) == "ffffffffffff02000000000a0806010203")
    let decoded = try EthernetFrame(decoding: bytes)
    #expect(decoded == frame)
    #expect(decoded.headerLength == 14)
    #expect(decoded.vlanIDs.isEmpty)
  }

  @Test func qinqTagsAreSkippedAndRecorded() throws {
    let tags = [
      VLANTag(tpid: .qinq, priority: 5, vid: 100), VLANTag(tpid: .vlan, dropEligible: true, vid: 4094),
    ]
    let bytes = Sample.udp4(vlanTags: tags)
    let decoded = try EthernetFrame(decoding: bytes)
    #expect(decoded.vlanIDs == [100, 4094])
    #expect(decoded.vlanTags == tags)
    #expect(decoded.etherType == .ipv4)
    #expect(decoded.headerLength == 22)
    #expect(bytes.getInteger(at: 12, as: UInt16.self) == 0x88a8)
    #expect(bytes.getInteger(at: 14, as: UInt16.self) == 0xa064)
    #expect(try IPv4Packet(decoding: decoded.payload).destination == Sample.v4B)
  }

  @Test func payloadIsASliceNotACopy() throws {
    let bytes = Sample.udp4()
    let decoded = try EthernetFrame(decoding: bytes)
    let same = bytes.withUnsafeReadableBytes { outer in
      decoded.payload.withUnsafeReadableBytes { inner in inner.baseAddress == outer.baseAddress! + 14 }
    }
    #expect(same)
  }

  @Test func truncatedAndMalformed() {
    expectEveryPrefixThrows(Sample.udp4(), shorterThan: 14) { b throws(WireError) in
      try EthernetFrame(decoding: b)
    }
    let tagged = Sample.udp4(vlanTags: [VLANTag(vid: 7)])
    expectEveryPrefixThrows(tagged, shorterThan: 18) { b throws(WireError) in try EthernetFrame(decoding: b) }
    expectWireError(.unsupported) { () throws(WireError) in
      try EthernetFrame(decoding: hexBuffer("ffffffffffff02000000000a0040aaaa"))
    }
    var many = ByteBuffer(bytes: hexBytes("ffffffffffff02000000000a"))
    for _ in 0..<9 { many.writeBytes([0x81, 0x00, 0x00, 0x01]) }
    many.writeBytes([0x08, 0x00])
    expectWireError(.badField) { () throws(WireError) in try EthernetFrame(decoding: many) }
  }
}
