import NIOCore
import Testing
import WeftWire

@Suite struct IPv6Tests {
  @Test func walksExtensionHeadersToUDP() throws {
    let p = Sample.udp6WithExtensions()
    let bytes = p.bytes
    // 40 fixed + 8 HBH + 8 DO + 8 fragment + 8 UDP + 10 payload
    #expect(bytes.readableBytes == 82)
    #expect(bytes.getInteger(at: 6, as: UInt8.self) == 0)  // next header: hop-by-hop
    #expect(bytes.getInteger(at: 4, as: UInt16.self) == 42)
    let d = try IPv6Packet(decoding: bytes)
    #expect(d.extensionHeaders.map(\.type) == [.hopByHop, .ipv6DestinationOptions, .ipv6Fragment])
    #expect(d.upperLayerProtocol == .udp)
    #expect(d.headerLength == 64)
    #expect(d.fragment == IPv6Fragment(offset: 0, moreFragments: false, identification: 0xdead_beef))
    #expect(!d.isFragment)
    #expect(d.flowLabel == 0x12345 && d.hopLimit == 33)
    #expect(d.source == Sample.v6A && d.destination == Sample.v6B)
    let udp = try UDPDatagram(decoding: d.payload)
    #expect(udp.destinationPort == 6000)
    #expect(udp.isChecksumValid(source: .v6(d.source), destination: .v6(d.destination)))
    #expect(d.bytes == bytes)
    #expect(d == (try IPv6Packet(decoding: d.bytes)))
  }

  @Test func routingAndAHLengths() throws {
    // Routing header type 0-ish body with one address: len byte 2 → 24 bytes.
    var rh = ByteBuffer(bytes: [0, 1, 0, 0, 0, 0])
    rh.writeRepeatingByte(0x11, count: 16)
    // AH: 12 bytes fixed + 12 bytes ICV = 24 → length byte 4.
    let ah = IPv6ExtensionHeader(type: .ah, body: ByteBuffer(repeating: 0x22, count: 22))
    let p = IPv6Packet(
      source: Sample.v6A, destination: Sample.v6B, upperLayerProtocol: .tcp,
      payload: ByteBuffer(bytes: [9, 9]),
      extensionHeaders: [IPv6ExtensionHeader(type: .ipv6Routing, body: rh), ah])
    let bytes = p.bytes
    #expect(bytes.getInteger(at: 41, as: UInt8.self) == 2)
    #expect(bytes.getInteger(at: 64 + 1, as: UInt8.self) == 4)
    let d = try IPv6Packet(decoding: bytes)
    #expect(d.headerLength == 40 + 24 + 24)
    #expect(d.upperLayerProtocol == .tcp)
    #expect(d.payload == ByteBuffer(bytes: [9, 9]))
  }

  @Test func nonFirstFragmentStopsTheWalk() throws {
    let p = IPv6Packet(
      source: Sample.v6A, destination: Sample.v6B, upperLayerProtocol: .udp,
      payload: ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8]),
      extensionHeaders: [.fragment(IPv6Fragment(offset: 100, moreFragments: true, identification: 7))])
    let d = try IPv6Packet(decoding: p.bytes)
    #expect(d.isFragment)
    #expect(d.fragment?.offset == 100)
    #expect(d.upperLayerProtocol == .udp)
    #expect(d.payload.readableBytes == 8)
  }

  @Test func truncatedAtEveryLength() {
    expectEveryPrefixThrows(Sample.udp6WithExtensions().bytes) { b throws(WireError) in
      try IPv6Packet(decoding: b)
    }
  }

  @Test func headerRunningPastPayloadLengthIsTruncation() {
    var b = Sample.udp6WithExtensions().bytes
    b.setInteger(UInt8(200), at: 41)  // HBH claims 1608 bytes
    expectWireError(.truncated) { () throws(WireError) in try IPv6Packet(decoding: b) }
    var short = Sample.udp6WithExtensions().bytes
    short.setInteger(UInt16(20), at: 4)  // payload length cuts the second header in half
    expectWireError(.truncated) { () throws(WireError) in try IPv6Packet(decoding: short) }
    var long = Sample.udp6WithExtensions().bytes
    long.setInteger(UInt16(43), at: 4)
    expectWireError(.truncated) { () throws(WireError) in try IPv6Packet(decoding: long) }
  }

  @Test func rejectsBadChains() {
    func packet(_ headers: [IPv6ExtensionHeader]) -> ByteBuffer {
      IPv6Packet(
        source: Sample.v6A, destination: Sample.v6B, upperLayerProtocol: .noNextHeader, payload: ByteBuffer(),
        extensionHeaders: headers
      ).bytes
    }
    let hbhSecond = packet([.options(.ipv6DestinationOptions), .options(.hopByHop)])
    expectWireError(.badField) { () throws(WireError) in try IPv6Packet(decoding: hbhSecond) }
    let frag = IPv6ExtensionHeader.fragment(IPv6Fragment(offset: 0, moreFragments: false, identification: 1))
    expectWireError(.badField) { () throws(WireError) in try IPv6Packet(decoding: packet([frag, frag])) }
    let threeDO = packet(Array(repeating: .options(.ipv6DestinationOptions), count: 3))
    expectWireError(.badField) { () throws(WireError) in try IPv6Packet(decoding: threeDO) }
    #expect(
      (try? IPv6Packet(decoding: packet(Array(repeating: .options(.ipv6DestinationOptions), count: 2))))
        != nil)
    var v4 = packet([])
    v4.setInteger(UInt8(0x45), at: 0)
    expectWireError(.badField) { () throws(WireError) in try IPv6Packet(decoding: v4) }
    var jumbo = packet([.options(.hopByHop, [0xc2, 4, 0, 1, 0, 0])])
    jumbo.setInteger(UInt16(0), at: 4)
    expectWireError(.unsupported) { () throws(WireError) in try IPv6Packet(decoding: jumbo) }
  }

  @Test func optionsArePadded() {
    #expect(IPv6ExtensionHeader.options(.hopByHop).length == 8)
    #expect(IPv6ExtensionHeader.options(.hopByHop, [5, 2, 0, 0]).length == 8)
    #expect(IPv6ExtensionHeader.options(.hopByHop, [1, 3, 0, 0, 0]).length == 8)
    #expect(IPv6ExtensionHeader.options(.hopByHop, [1, 4, 0, 0, 0, 0]).length == 8)
    #expect(IPv6ExtensionHeader.options(.hopByHop, [1, 5, 0, 0, 0, 0, 0]).length == 16)
  }
}
