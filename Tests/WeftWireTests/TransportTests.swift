import NIOCore
import Testing
import WeftWire

@Suite struct UDPTests {
  @Test func roundTripAndChecksumV4() throws {
    let u = UDPDatagram(sourcePort: 1234, destinationPort: 53, payload: ByteBuffer(bytes: Array("abc".utf8)))
    let b = u.bytes(source: .v4(Sample.v4A), destination: .v4(Sample.v4B))
    #expect(b.readableBytes == 11)
    let d = try UDPDatagram(decoding: b)
    #expect(d.sourcePort == 1234 && d.destinationPort == 53 && d.length == 11)
    #expect(d.checksum != 0)
    #expect(d.isChecksumValid(source: .v4(Sample.v4A), destination: .v4(Sample.v4B)))
    #expect(!d.isChecksumValid(source: .v4(Sample.v4B), destination: .v4(Sample.v4B)))
  }

  @Test func zeroChecksumMeansNoneOnlyForIPv4() throws {
    let b = UDPDatagram(sourcePort: 1, destinationPort: 2, payload: ByteBuffer(bytes: [1])).bytes()
    let d = try UDPDatagram(decoding: b)
    #expect(d.checksum == 0)
    #expect(d.isChecksumValid(source: .v4(Sample.v4A), destination: .v4(Sample.v4B)))
    #expect(!d.isChecksumValid(source: .v6(Sample.v6A), destination: .v6(Sample.v6B)))
  }

  @Test func computedZeroIsSentAsAllOnes() throws {
    for (s, d) in [(IPAddress.v4(Sample.v4A), IPAddress.v4(Sample.v4B)), (.v6(Sample.v6A), .v6(Sample.v6B))] {
      // Pick the payload word that makes the one's complement sum 0xFFFF.
      let probe = UDPDatagram(sourcePort: 7, destinationPort: 9, payload: ByteBuffer(bytes: [0, 0]))
      let c = probe.computeChecksum(source: s, destination: d)
      let u = UDPDatagram(
        sourcePort: 7, destinationPort: 9, payload: ByteBuffer(bytes: [UInt8(c >> 8), UInt8(c & 0xff)]))
      #expect(u.computeChecksum(source: s, destination: d) == 0xFFFF)
      let decoded = try UDPDatagram(decoding: u.bytes(source: s, destination: d))
      #expect(decoded.checksum == 0xFFFF)
      #expect(decoded.isChecksumValid(source: s, destination: d))
    }
  }

  @Test func malformed() {
    let b = UDPDatagram(sourcePort: 1, destinationPort: 2, payload: ByteBuffer(bytes: [1, 2, 3])).bytes()
    expectEveryPrefixThrows(b) { x throws(WireError) in try UDPDatagram(decoding: x) }
    var short = b
    short.setInteger(UInt16(7), at: 4)
    expectWireError(.badLength) { () throws(WireError) in try UDPDatagram(decoding: short) }
    var long = b
    long.setInteger(UInt16(12), at: 4)
    expectWireError(.truncated) { () throws(WireError) in try UDPDatagram(decoding: long) }
    var trailing = b
    trailing.writeBytes([9, 9])
    #expect((try? UDPDatagram(decoding: trailing))?.payload == ByteBuffer(bytes: [1, 2, 3]))
  }
}

@Suite struct TCPTests {
  @Test func roundTrip() throws {
    let frame = try EthernetFrame(decoding: Sample.tcp4())
    let ip = try IPv4Packet(decoding: frame.payload)
    let t = try TCPSegment(decoding: ip.payload)
    #expect(t.sourcePort == 40001 && t.destinationPort == 80)
    #expect(t.flags == [.syn])
    #expect(t.sequenceNumber == 1000)
    #expect(t.headerLength == 24)
    #expect(t.options == ByteBuffer(bytes: [2, 4, 5, 0xb4]))
    #expect(t.isChecksumValid(source: .v4(ip.source), destination: .v4(ip.destination)))
    #expect(!t.isChecksumValid(source: .v4(ip.destination), destination: .v4(ip.destination)))
  }

  @Test func oddOptionsAreChecksummedAsPadded() throws {
    var b = ByteBuffer()
    TCPSegment(
      sourcePort: 1, destinationPort: 2, flags: [.ack, .psh], options: ByteBuffer(bytes: [1, 1, 1]),
      payload: ByteBuffer(bytes: [0xaa, 0xbb, 0xcc])
    ).write(to: &b, source: .v6(Sample.v6A), destination: .v6(Sample.v6B))
    let t = try TCPSegment(decoding: b)
    #expect(t.headerLength == 24 && t.payload.readableBytes == 3)
    #expect(t.isChecksumValid(source: .v6(Sample.v6A), destination: .v6(Sample.v6B)))
  }

  @Test func malformed() throws {
    let frame = try EthernetFrame(decoding: Sample.tcp4())
    let seg = try IPv4Packet(decoding: frame.payload).payload
    expectEveryPrefixThrows(seg) { b throws(WireError) in try TCPSegment(decoding: b) }
    var bad = seg
    bad.setInteger(UInt8(0x40), at: bad.readerIndex + 12)
    expectWireError(.badField) { () throws(WireError) in try TCPSegment(decoding: bad) }
  }
}
