import NIOCore
import WeftWire

/// Decodes a frame through every WeftWire layer into flat "facts" (`"ip.src"`,
/// `"inner.tcp.dport"`, ...) so cross-checks can compare them with another tool's view.
/// A decoder failure is recorded as `"error": "layer:code"` and stops the walk.
struct Dissector {
  private(set) var facts: [String: String] = [:]
  private let prefix: String

  private init(prefix: String) { self.prefix = prefix }

  /// The facts of an Ethernet frame.
  static func facts(of frame: ByteBuffer) -> [String: String] {
    var d = Dissector(prefix: "")
    d.ethernet(frame)
    return d.facts
  }

  private mutating func set(_ key: String, _ value: some CustomStringConvertible) {
    self.facts[self.prefix + key] = value.description
  }

  private mutating func fail(_ error: WireError) {
    self.set("error", "\(error.layer):\(error.code.rawValue)")
  }

  private mutating func ethernet(_ frame: ByteBuffer) {
    do {
      let eth = try EthernetFrame(decoding: frame)
      self.set("eth.src", eth.source)
      self.set("eth.dst", eth.destination)
      self.set("eth.type", eth.etherType)
      if !eth.vlanTags.isEmpty { self.set("vlan.ids", eth.vlanIDs.map(String.init).joined(separator: ",")) }
      switch eth.etherType {
      case .arp:
        let a = try ARPPacket(decoding: eth.payload)
        self.set("arp.op", a.operation.rawValue)
        self.set("arp.hwsrc", a.senderMAC)
        self.set("arp.psrc", a.senderIP)
        self.set("arp.hwdst", a.targetMAC)
        self.set("arp.pdst", a.targetIP)
      case .ipv4: try self.ipv4(eth.payload)
      case .ipv6: try self.ipv6(eth.payload)
      default: break
      }
    } catch {
      self.fail(error)
    }
  }

  private mutating func ipv4(_ bytes: ByteBuffer) throws(WireError) {
    var ok = true
    let p: IPv4Packet
    do {
      p = try IPv4Packet(decoding: bytes)
    } catch  where error.code == .badChecksum {
      ok = false
      p = try IPv4Packet(decoding: bytes, verifyChecksum: false)
    }
    self.set("ip.checksum_ok", ok)
    self.set("ip.src", p.source)
    self.set("ip.dst", p.destination)
    self.set("ip.proto", p.protocol.rawValue)
    self.set("ip.ttl", p.ttl)
    self.set("ip.hl", p.headerLength)
    self.set("ip.len", p.totalLength)
    self.set("ip.id", p.identification)
    self.set("ip.tos", p.typeOfService)
    self.set("ip.df", p.dontFragment)
    self.set("ip.mf", p.moreFragments)
    self.set("ip.frag", p.fragmentOffset)
    guard p.fragmentOffset == 0 else { return }
    try self.transport(p.protocol, p.payload, source: .v4(p.source), destination: .v4(p.destination))
  }

  private mutating func ipv6(_ bytes: ByteBuffer) throws(WireError) {
    let p = try IPv6Packet(decoding: bytes)
    self.set("ipv6.src", p.source)
    self.set("ipv6.dst", p.destination)
    self.set("ipv6.hlim", p.hopLimit)
    self.set("ipv6.fl", p.flowLabel)
    self.set("ipv6.tc", p.trafficClass)
    self.set("ipv6.plen", p.payloadLength)
    self.set("ipv6.chain", p.extensionHeaders.map { String($0.type.rawValue) }.joined(separator: ","))
    self.set("ipv6.ulp", p.upperLayerProtocol.rawValue)
    self.set("ipv6.final_dst", p.finalDestination)
    if let f = p.fragment {
      self.set("ipv6.frag_id", f.identification)
      self.set("ipv6.frag_offset", f.offset)
      self.set("ipv6.frag_m", f.moreFragments)
      guard f.offset == 0 else { return }
    }
    try self.transport(
      p.upperLayerProtocol, p.payload, source: .v6(p.source), destination: .v6(p.finalDestination))
  }

  private mutating func transport(
    _ proto: IPProtocol, _ bytes: ByteBuffer, source: IPAddress, destination: IPAddress
  ) throws(WireError) {
    switch proto {
    case .udp:
      let u = try UDPDatagram(decoding: bytes)
      self.set("udp.sport", u.sourcePort)
      self.set("udp.dport", u.destinationPort)
      self.set("udp.len", u.length)
      self.set("udp.checksum_ok", u.isChecksumValid(source: source, destination: destination))
      if u.destinationPort == VXLANPacket.defaultPort {
        let v = try VXLANPacket(decoding: u.payload)
        self.set("vxlan.vni", v.vni)
        var inner = Dissector(prefix: self.prefix + "inner.")
        inner.ethernet(v.payload)
        self.facts.merge(inner.facts) { _, new in new }
      }
    case .tcp:
      let t = try TCPSegment(decoding: bytes)
      self.set("tcp.sport", t.sourcePort)
      self.set("tcp.dport", t.destinationPort)
      self.set("tcp.seq", t.sequenceNumber)
      self.set("tcp.ack", t.acknowledgmentNumber)
      self.set("tcp.flags", t.flags.rawValue)
      self.set("tcp.hl", t.headerLength)
      self.set("tcp.checksum_ok", t.isChecksumValid(source: source, destination: destination))
    case .icmp:
      let m = try ICMPv4Message(decoding: bytes, verifyChecksum: false)
      self.set("icmp.type", m.type)
      self.set("icmp.code", m.code)
      self.set("icmp.checksum_ok", Checksum.compute(bytes) == 0)
      if let mtu = m.nextHopMTU { self.set("icmp.mtu", mtu) }
      if m.isError { self.set("icmp.quote_len", m.payload.readableBytes) }
    case .icmpv6:
      let m = try ICMPv6Message(decoding: bytes)
      self.set("icmpv6.type", m.type)
      self.set("icmpv6.code", m.code)
      if case .v6(let s) = source, case .v6(let d) = destination {
        self.set("icmpv6.checksum_ok", m.isChecksumValid(source: s, destination: d))
      }
      if let mtu = m.mtu { self.set("icmpv6.mtu", mtu) }
      if m.isError { self.set("icmpv6.quote_len", m.payload.readableBytes) }
    default:
      break
    }
  }
}
