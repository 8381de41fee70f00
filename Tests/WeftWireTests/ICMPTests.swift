import NIOCore
import Testing
import WeftWire

@Suite struct ICMPTests {
  /// A 1500-byte IPv4 UDP packet with DF set.
  func bigIPv4() -> ByteBuffer {
    let udp = UDPDatagram(sourcePort: 1, destinationPort: 2, payload: ByteBuffer(repeating: 7, count: 1472))
    return IPv4Packet(
      source: Sample.v4A, destination: Sample.v4B, protocol: .udp,
      payload: udp.bytes(source: .v4(Sample.v4A), destination: .v4(Sample.v4B)), dontFragment: true
    ).bytes
  }

  @Test func fragmentationNeeded() throws {
    let offending = self.bigIPv4()
    let router = IPv4Address(10, 0, 0, 254)
    let reply = try ICMPv4Message.fragmentationNeededPacket(for: offending, from: router, nextHopMTU: 1450)
    #expect(reply.source == router && reply.destination == Sample.v4A && reply.protocol == .icmp)
    #expect(reply.totalLength == 576)
    let decoded = try IPv4Packet(decoding: reply.bytes)
    let icmp = try ICMPv4Message(decoding: decoded.payload)
    #expect(icmp.type == 3 && icmp.code == 4)
    #expect(icmp.nextHopMTU == 1450)
    #expect(icmp.isError)
    #expect(icmp.payload == offending.getSlice(at: 0, length: 548))
    let quoted = try IPv4Packet(
      decoding: icmp.payload.getSlice(at: icmp.payload.readerIndex, length: 20)!
        .withTotalLengthOnly(), verifyChecksum: false)
    #expect(quoted.destination == Sample.v4B)
  }

  @Test func smallOffendingPacketIsQuotedWhole() throws {
    let small = IPv4Packet(
      source: Sample.v4A, destination: Sample.v4B, protocol: .udp, payload: ByteBuffer(repeating: 1, count: 8)
    ).bytes
    let m = ICMPv4Message.fragmentationNeeded(quoting: small, nextHopMTU: 1400)
    #expect(m.payload == small)
    #expect(try ICMPv4Message(decoding: m.bytes).nextHopMTU == 1400)
  }

  @Test func refusesErrorsAboutErrorsAndLaterFragments() throws {
    let errorAboutError = try ICMPv4Message.fragmentationNeededPacket(
      for: self.bigIPv4(), from: IPv4Address(10, 0, 0, 254), nextHopMTU: 1400
    ).bytes
    expectWireError(.unsupported) { () throws(WireError) in
      try ICMPv4Message.fragmentationNeededPacket(for: errorAboutError, from: Sample.v4B, nextHopMTU: 1400)
    }
    let fragment = IPv4Packet(
      source: Sample.v4A, destination: Sample.v4B, protocol: .udp,
      payload: ByteBuffer(repeating: 0, count: 16),
      fragmentOffset: 10
    ).bytes
    expectWireError(.unsupported) { () throws(WireError) in
      try ICMPv4Message.fragmentationNeededPacket(for: fragment, from: Sample.v4B, nextHopMTU: 1400)
    }
    let echo = ICMPv4Message(type: ICMPv4Message.echoRequest, code: 0, restOfHeader: 0x0001_0001)
    let ping = IPv4Packet(source: Sample.v4A, destination: Sample.v4B, protocol: .icmp, payload: echo.bytes)
      .bytes
    #expect(
      (try? ICMPv4Message.fragmentationNeededPacket(for: ping, from: Sample.v4B, nextHopMTU: 1400)) != nil)
  }

  @Test func icmpv4DecodeErrors() {
    let m = ICMPv4Message(type: 8, code: 0, restOfHeader: 0x1234_0001, payload: ByteBuffer(bytes: [1, 2, 3]))
    expectEveryPrefixThrows(m.bytes) { b throws(WireError) in try ICMPv4Message(decoding: b) }
    var bad = m.bytes
    bad.setInteger(UInt8(9), at: 10)
    expectWireError(.badChecksum) { () throws(WireError) in try ICMPv4Message(decoding: bad) }
    #expect((try? ICMPv4Message(decoding: bad, verifyChecksum: false))?.restOfHeader == 0x1234_0001)
  }

  @Test func packetTooBig() throws {
    let udp = UDPDatagram(sourcePort: 1, destinationPort: 2, payload: ByteBuffer(repeating: 7, count: 1800))
    let offending = IPv6Packet(
      source: Sample.v6A, destination: Sample.v6B, upperLayerProtocol: .udp,
      payload: udp.bytes(source: .v6(Sample.v6A), destination: .v6(Sample.v6B))
    ).bytes
    let router = IPv6Address("fd00::fe")!
    let reply = try ICMPv6Message.packetTooBigPacket(for: offending, from: router, mtu: 1450)
    let bytes = reply.bytes
    #expect(bytes.readableBytes == 1280)
    let d = try IPv6Packet(decoding: bytes)
    #expect(d.source == router && d.destination == Sample.v6A && d.upperLayerProtocol == .icmpv6)
    let icmp = try ICMPv6Message(decoding: d.payload)
    #expect(icmp.type == 2 && icmp.code == 0 && icmp.mtu == 1450)
    #expect(icmp.isChecksumValid(source: router, destination: Sample.v6A))
    #expect(!icmp.isChecksumValid(source: router, destination: Sample.v6B))
    #expect(icmp.payload == offending.getSlice(at: 0, length: 1232))

    let small = IPv6Packet(
      source: Sample.v6A, destination: Sample.v6B, upperLayerProtocol: .udp, payload: ByteBuffer(bytes: [1])
    ).bytes
    let smallReply = try ICMPv6Message.packetTooBigPacket(for: small, from: router, mtu: 1280)
    #expect(try ICMPv6Message(decoding: smallReply.payload).payload == small)
  }

  @Test func packetTooBigRefusals() throws {
    let err = try ICMPv6Message.packetTooBigPacket(
      for: Sample.udp6WithExtensions().bytes, from: Sample.v6B, mtu: 1280
    ).bytes
    expectWireError(.unsupported) { () throws(WireError) in
      try ICMPv6Message.packetTooBigPacket(for: err, from: Sample.v6B, mtu: 1280)
    }
    let multicastSource = IPv6Packet(
      source: IPv6Address("ff02::1")!, destination: Sample.v6B, upperLayerProtocol: .udp,
      payload: ByteBuffer()
    ).bytes
    expectWireError(.unsupported) { () throws(WireError) in
      try ICMPv6Message.packetTooBigPacket(for: multicastSource, from: Sample.v6B, mtu: 1280)
    }
    let echo = ICMPv6Message(type: ICMPv6Message.echoRequest, code: 0)
    let ping = IPv6Packet(
      source: Sample.v6A, destination: Sample.v6B, upperLayerProtocol: .icmpv6,
      payload: echo.bytes(source: Sample.v6A, destination: Sample.v6B)
    ).bytes
    #expect((try? ICMPv6Message.packetTooBigPacket(for: ping, from: Sample.v6B, mtu: 1280)) != nil)
  }

  @Test func icmpv6Truncation() {
    let m = ICMPv6Message(type: 128, code: 0, body: 1).bytes(source: Sample.v6A, destination: Sample.v6B)
    expectEveryPrefixThrows(m) { b throws(WireError) in try ICMPv6Message(decoding: b) }
  }
}

extension ByteBuffer {
  /// A copy of a 20-byte quoted IPv4 header with its total length rewritten to 20, so the quote
  /// decodes on its own.
  fileprivate func withTotalLengthOnly() -> ByteBuffer {
    var b = self
    b.setInteger(UInt16(20), at: b.readerIndex + 2)
    return b
  }
}
