import CFuzzDriver
import NIOCore
import WeftWire

/// Wraps libFuzzer's input in a `ByteBuffer` and runs `body` on it.
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int, _ body: (ByteBuffer) -> Void) {
  guard let data, size >= 0 else {
    body(ByteBuffer())
    return
  }
  body(ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size)))
}

/// Stops the fuzzer with a finding when an invariant fails.
public func invariant(_ condition: Bool, _ message: @autoclosure () -> String) {
  if !condition { fatalError("fuzz invariant failed: \(message())") }
}

/// Ethernet: decode, re-encode, decode again to the same frame.
public func fuzzEthernet(_ b: ByteBuffer) {
  guard let f = try? EthernetFrame(decoding: b) else { return }
  invariant(f.headerLength + f.payload.readableBytes == b.readableBytes, "ethernet lengths")
  invariant((try? EthernetFrame(decoding: f.bytes)) == f, "ethernet round trip")
  _ = FlowKey(frame: b).hash()
}

/// ARP: decode, re-encode, decode again.
public func fuzzARP(_ b: ByteBuffer) {
  guard let a = try? ARPPacket(decoding: b) else { return }
  var out = ByteBuffer()
  a.write(to: &out)
  invariant((try? ARPPacket(decoding: out)) == a, "arp round trip")
  _ = ARPPacket.reply(to: a, with: .zero).frame.bytes
}

/// IPv4: decode without the checksum; a re-encoding must verify and decode to the same fields.
public func fuzzIPv4(_ b: ByteBuffer) {
  _ = try? IPv4Packet(decoding: b)
  guard var p = try? IPv4Packet(decoding: b, verifyChecksum: false) else { return }
  let again = try? IPv4Packet(decoding: p.bytes)
  invariant(again != nil, "ipv4 re-encoding does not decode")
  p.headerChecksum = again?.headerChecksum ?? 0
  invariant(again == p, "ipv4 round trip")
  _ = try? ICMPv4Message.fragmentationNeededPacket(for: b, from: IPv4Address(10, 0, 0, 1), nextHopMTU: 1400)
    .bytes
}

/// IPv6: decode, re-encode, decode again.
public func fuzzIPv6(_ b: ByteBuffer) {
  guard let p = try? IPv6Packet(decoding: b) else { return }
  invariant(p.headerLength + p.payload.readableBytes <= b.readableBytes, "ipv6 lengths")
  invariant((try? IPv6Packet(decoding: p.bytes)) == p, "ipv6 round trip")
  _ = p.finalDestination
  _ = p.fragment
  if let reply = try? ICMPv6Message.packetTooBigPacket(for: b, from: IPv6Address(high: 1, low: 1), mtu: 1280)
  {
    invariant(reply.bytes.readableBytes <= 1280, "packet too big exceeds 1280")
  }
}

/// ICMP (both families): decode, re-encode, verify.
public func fuzzICMP(_ b: ByteBuffer) {
  if let m = try? ICMPv4Message(decoding: b, verifyChecksum: false) {
    invariant((try? ICMPv4Message(decoding: m.bytes)) != nil, "icmp re-encoding does not verify")
    _ = m.nextHopMTU
  }
  _ = try? ICMPv4Message(decoding: b)
  if let m = try? ICMPv6Message(decoding: b) {
    let s = IPv6Address(high: 0xfd00 << 48, low: 1)
    let d = IPv6Address(high: 0xfd00 << 48, low: 2)
    let again = try? ICMPv6Message(decoding: m.bytes(source: s, destination: d))
    invariant(again?.isChecksumValid(source: s, destination: d) == true, "icmpv6 checksum round trip")
    _ = m.mtu
  }
}

/// UDP: decode, re-encode with a checksum for both families, verify.
public func fuzzUDP(_ b: ByteBuffer) {
  guard let u = try? UDPDatagram(decoding: b) else { return }
  _ = u.isChecksumValid(source: .v4(IPv4Address(1)), destination: .v4(IPv4Address(2)))
  for (s, d) in [
    (IPAddress.v4(IPv4Address(1)), IPAddress.v4(IPv4Address(2))),
    (.v6(IPv6Address(high: 1, low: 2)), .v6(IPv6Address(high: 3, low: 4))),
  ] {
    let again = try? UDPDatagram(decoding: u.bytes(source: s, destination: d))
    invariant(again?.isChecksumValid(source: s, destination: d) == true, "udp checksum round trip")
    invariant(again?.payload == u.payload, "udp payload round trip")
  }
  if let t = try? TCPSegment(decoding: b) {
    var out = ByteBuffer()
    t.write(to: &out, source: .v4(IPv4Address(1)), destination: .v4(IPv4Address(2)))
    let again = try? TCPSegment(decoding: out)
    invariant(
      again?.isChecksumValid(source: .v4(IPv4Address(1)), destination: .v4(IPv4Address(2))) == true, "tcp")
  }
}

/// VXLAN: decode, re-encode (reserved bits cleared), decode again.
public func fuzzVXLAN(_ b: ByteBuffer) {
  guard let v = try? VXLANPacket(decoding: b) else { return }
  var out = ByteBuffer()
  v.write(to: &out)
  invariant((try? VXLANPacket(decoding: out)) == v, "vxlan round trip")
  _ = try? VXLANEncapsulation.decapsulate(udpPayload: b)
}

/// A whole frame through every layer, outer and inner, plus the flow hash and encapsulation.
public func fuzzFrame(_ b: ByteBuffer) {
  walk(frame: b, depth: 0)
  _ = try? VXLANFrame(decoding: b)
  if let f = try? VXLANFrame(decoding: b, verifyChecksums: false) {
    walk(frame: f.innerFrame, depth: 1)
  }
  let port = FlowHash.sourcePort(innerFrame: b)
  invariant(FlowHash.portRange.contains(port), "flow hash port out of range")
  if b.readableBytes < 9000,
    let tunnel = try? VXLANEncapsulation(
      sourceMAC: .zero, destinationMAC: .broadcast, source: .v4(IPv4Address(1)),
      destination: .v4(IPv4Address(2)))
  {
    let outer = tunnel.encapsulate(b, vni: VNI(rawValue: 7) ?? VNI(rawValue: 0)!)
    let f = try? VXLANFrame(decoding: outer)
    invariant(f?.innerFrame == b, "encapsulation round trip")
  }
}

private func walk(frame: ByteBuffer, depth: Int) {
  guard depth < 4, let eth = try? EthernetFrame(decoding: frame) else { return }
  switch eth.etherType {
  case .arp: fuzzARP(eth.payload)
  case .ipv4, .ipv6:
    fuzzIPv4(eth.payload)
    fuzzIPv6(eth.payload)
    guard let ip = try? IPPacket(decoding: eth.payload, verifyChecksum: false), !ip.isFragment else { return }
    switch ip.upperLayerProtocol {
    case .udp:
      fuzzUDP(ip.payload)
      if let u = try? UDPDatagram(decoding: ip.payload) {
        _ = u.isChecksumValid(source: ip.source, destination: ip.finalDestination)
        if let v = try? VXLANPacket(decoding: u.payload) { walk(frame: v.payload, depth: depth + 1) }
      }
    case .tcp: _ = try? TCPSegment(decoding: ip.payload)
    case .icmp, .icmpv6: fuzzICMP(ip.payload)
    default: break
    }
  default: break
  }
}

/// Runs libFuzzer's driver with `argc`/`argv` and `target` as the fuzz target.
public func runFuzzer(
  _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
  _ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
  var count = argc
  var vector = argv
  return LLVMFuzzerRunDriver(&count, &vector, target)
}
