import NIOCore
import Testing
import WeftWire

@Suite struct IPv4Tests {
  static let vector = "4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7"

  func vectorPacket() -> ByteBuffer {
    var b = hexBuffer(Self.vector)
    b.writeRepeatingByte(0xab, count: 0x73 - 20)
    return b
  }

  @Test func decodesClassicVector() throws {
    let p = try IPv4Packet(decoding: self.vectorPacket())
    #expect(p.headerChecksum == 0xb861)
    #expect(p.source == IPv4Address(192, 168, 0, 1))
    #expect(p.destination == IPv4Address(192, 168, 0, 199))
    #expect(p.protocol == .udp)
    #expect(p.ttl == 64)
    #expect(p.dontFragment && !p.moreFragments && p.fragmentOffset == 0)
    #expect(p.totalLength == 0x73)
    #expect(p.payload.readableBytes == 0x73 - 20)
  }

  @Test func encodesClassicVector() {
    let p = IPv4Packet(
      source: IPv4Address(192, 168, 0, 1), destination: IPv4Address(192, 168, 0, 199), protocol: .udp,
      payload: ByteBuffer(repeating: 0xab, count: 0x73 - 20), dontFragment: true)
    #expect(p.bytes == self.vectorPacket())
  }

  @Test func roundTripWithOptionsAndFragmentFields() throws {
    let p = IPv4Packet(
      source: Sample.v4A, destination: Sample.v4B, protocol: .tcp,
      payload: ByteBuffer(bytes: [1, 2, 3, 4, 5]),
      ttl: 3, typeOfService: 0xb8, identification: 0xbeef, moreFragments: true, fragmentOffset: 185,
      options: ByteBuffer(bytes: [0x94, 0x04, 0x00, 0x00, 0x01]))  // router alert + NOP, padded to 8
    let bytes = p.bytes
    #expect(bytes.readableBytes == 28 + 5)
    #expect(bytes.getInteger(at: 0, as: UInt8.self) == 0x47)
    let d = try IPv4Packet(decoding: bytes)
    #expect(d.headerLength == 28)
    #expect(d.options.readableBytes == 8)
    #expect(d.fragmentOffset == 185 && d.moreFragments && !d.dontFragment && d.isFragment)
    #expect(d.typeOfService == 0xb8 && d.identification == 0xbeef && d.ttl == 3)
    #expect(d.payload == p.payload)
    #expect(d.bytes == bytes)
  }

  @Test func trailingPaddingIsDropped() throws {
    var b = self.vectorPacket()
    b.writeRepeatingByte(0, count: 10)
    let p = try IPv4Packet(decoding: b)
    #expect(p.payload.readableBytes == 0x73 - 20)
  }

  @Test func truncatedAtEveryLength() {
    expectEveryPrefixThrows(self.vectorPacket()) { b throws(WireError) in try IPv4Packet(decoding: b) }
    expectEveryPrefixThrows(self.vectorPacket()) { b throws(WireError) in
      try IPv4Packet(decoding: b, verifyChecksum: false)
    }
  }

  @Test func malformedFields() {
    let good = self.vectorPacket()
    var v6 = good
    v6.setInteger(UInt8(0x65), at: 0)
    expectWireError(.badField) { () throws(WireError) in try IPv4Packet(decoding: v6) }
    var ihl4 = good
    ihl4.setInteger(UInt8(0x44), at: 0)
    expectWireError(.badField) { () throws(WireError) in try IPv4Packet(decoding: ihl4) }
    var ihl15 = hexBuffer(Self.vector)
    ihl15.setInteger(UInt8(0x4f), at: 0)
    expectWireError(.truncated) { () throws(WireError) in try IPv4Packet(decoding: ihl15) }
    var short = good
    short.setInteger(UInt16(19), at: 2)
    expectWireError(.badLength) { () throws(WireError) in
      try IPv4Packet(decoding: short, verifyChecksum: false)
    }
    var long = good
    long.setInteger(UInt16(0x74), at: 2)
    expectWireError(.truncated) { () throws(WireError) in
      try IPv4Packet(decoding: long, verifyChecksum: false)
    }
    var max = good
    max.setInteger(UInt16(0xffff), at: 2)
    expectWireError(.truncated) { () throws(WireError) in try IPv4Packet(decoding: max, verifyChecksum: false)
    }
    var badSum = good
    badSum.setInteger(UInt16(0xb862), at: 10)
    expectWireError(.badChecksum) { () throws(WireError) in try IPv4Packet(decoding: badSum) }
    #expect((try? IPv4Packet(decoding: badSum, verifyChecksum: false)) != nil)
  }

  @Test func ipPacketDispatchesOnVersion() throws {
    let p = try IPPacket(decoding: self.vectorPacket())
    #expect(p.source == .v4(IPv4Address(192, 168, 0, 1)))
    #expect(p.upperLayerProtocol == .udp)
    expectWireError(.badField) { () throws(WireError) in try IPPacket(decoding: hexBuffer("50")) }
    expectWireError(.truncated) { () throws(WireError) in try IPPacket(decoding: ByteBuffer()) }
  }
}
