import NIOCore
import Testing
import WeftWire

/// Bytes from a hex string; whitespace is ignored.
func hexBuffer(_ text: String) -> ByteBuffer {
  ByteBuffer(bytes: hexBytes(text))
}

/// Bytes from a hex string; whitespace is ignored.
func hexBytes(_ text: String) -> [UInt8] {
  let digits = Array(text.filter { !$0.isWhitespace })
  precondition(digits.count % 2 == 0, "odd hex digit count")
  return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// Lower-case hex of a buffer's readable bytes.
func hexString(_ buffer: ByteBuffer) -> String {
  buffer.readableBytesView.map { b in
    let s = String(b, radix: 16)
    return s.count == 1 ? "0" + s : s
  }.joined()
}

/// Asserts that decoding every strict prefix of `bytes` shorter than `limit` (default: all of
/// them) throws a `WireError`, and that nothing traps.
func expectEveryPrefixThrows<T>(
  _ bytes: ByteBuffer, shorterThan limit: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation,
  _ decode: (ByteBuffer) throws(WireError) -> T
) {
  let n = limit ?? bytes.readableBytes
  for length in 0..<n {
    let prefix = bytes.getSlice(at: bytes.readerIndex, length: length)!
    do {
      _ = try decode(prefix)
      Issue.record("prefix of \(length) bytes decoded without error", sourceLocation: sourceLocation)
    } catch {
      // expected: a typed WireError
    }
  }
}

/// Asserts that `body` throws a `WireError` with `code`.
func expectWireError<T>(
  _ code: WireError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(WireError) -> T
) {
  do {
    _ = try body()
    Issue.record("expected WireError .\(code), got success", sourceLocation: sourceLocation)
  } catch {
    #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
  }
}

/// Frames shared by the unit and cross-check tests.
enum Sample {
  static let macA = MACAddress(0x02, 0x00, 0x00, 0x00, 0x00, 0x0a)
  static let macB = MACAddress(0x02, 0x00, 0x00, 0x00, 0x00, 0x0b)
  static let v4A = IPv4Address(10, 0, 0, 1)
  static let v4B = IPv4Address(10, 0, 0, 2)
  static let v6A = IPv6Address("fd00::a")!
  static let v6B = IPv6Address("fd00::b")!

  /// Ethernet / IPv4 / UDP with a checksum.
  static func udp4(
    payload: [UInt8] = Array("hello weft".utf8), sport: UInt16 = 40000, dport: UInt16 = 33333,
    src: IPv4Address = v4A, dst: IPv4Address = v4B, vlanTags: [VLANTag] = [], dontFragment: Bool = true
  ) -> ByteBuffer {
    let udp = UDPDatagram(sourcePort: sport, destinationPort: dport, payload: ByteBuffer(bytes: payload))
    let ip = IPv4Packet(
      source: src, destination: dst, protocol: .udp,
      payload: udp.bytes(source: .v4(src), destination: .v4(dst)),
      identification: 0x1234, dontFragment: dontFragment)
    return EthernetFrame(
      destination: macB, source: macA, vlanTags: vlanTags, etherType: .ipv4, payload: ip.bytes
    )
    .bytes
  }

  /// Ethernet / IPv4 / TCP.
  static func tcp4(sport: UInt16 = 40001, dport: UInt16 = 80, src: IPv4Address = v4A, dst: IPv4Address = v4B)
    -> ByteBuffer
  {
    var seg = ByteBuffer()
    TCPSegment(
      sourcePort: sport, destinationPort: dport, sequenceNumber: 1000, flags: [.syn],
      options: ByteBuffer(bytes: [2, 4, 0x05, 0xb4])
    ).write(to: &seg, source: .v4(src), destination: .v4(dst))
    let ip = IPv4Packet(source: src, destination: dst, protocol: .tcp, payload: seg)
    return EthernetFrame(destination: macB, source: macA, etherType: .ipv4, payload: ip.bytes).bytes
  }

  /// IPv6 / Hop-by-Hop / Destination Options / Fragment (first) / UDP, as an IPv6 packet.
  static func udp6WithExtensions(payload: [UInt8] = Array("v6 payload".utf8)) -> IPv6Packet {
    let udp = UDPDatagram(sourcePort: 5000, destinationPort: 6000, payload: ByteBuffer(bytes: payload))
    return IPv6Packet(
      source: v6A, destination: v6B, upperLayerProtocol: .udp,
      payload: udp.bytes(source: .v6(v6A), destination: .v6(v6B)), hopLimit: 33, flowLabel: 0x12345,
      extensionHeaders: [
        .options(.hopByHop, [5, 2, 0, 0]),  // router alert
        .options(.ipv6DestinationOptions),
        .fragment(IPv6Fragment(offset: 0, moreFragments: false, identification: 0xdead_beef)),
      ])
  }

  /// Ethernet framing of an IPv6 packet.
  static func frame6(_ p: IPv6Packet) -> ByteBuffer {
    EthernetFrame(destination: macB, source: macA, etherType: .ipv6, payload: p.bytes).bytes
  }

  /// The standard VXLAN tunnel used by tests.
  static func tunnel4() -> VXLANEncapsulation {
    try! VXLANEncapsulation(
      sourceMAC: MACAddress(0x02, 0, 0, 0, 1, 1), destinationMAC: MACAddress(0x02, 0, 0, 0, 2, 2),
      source: .v4(IPv4Address(192, 168, 1, 1)), destination: .v4(IPv4Address(192, 168, 1, 2)))
  }

  /// An IPv6 VXLAN tunnel.
  static func tunnel6() -> VXLANEncapsulation {
    try! VXLANEncapsulation(
      sourceMAC: MACAddress(0x02, 0, 0, 0, 1, 1), destinationMAC: MACAddress(0x02, 0, 0, 0, 2, 2),
      source: .v6(IPv6Address("2001:db8::1")!), destination: .v6(IPv6Address("2001:db8::2")!))
  }
}
