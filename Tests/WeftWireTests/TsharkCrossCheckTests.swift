import Foundation
import NIOCore
import Testing
import WeftWire

/// Frames WeftWire builds must dissect in tshark (an independent decoder) to the values Weft
/// meant, with every checksum reported good and nothing malformed.
@Suite struct TsharkCrossCheckTests {
  /// One frame and the tshark fields expected for it (multiple occurrences joined by commas,
  /// outermost first).
  struct Case {
    var name: String
    var frame: ByteBuffer
    var expect: [String: String]
  }

  static func cases() throws -> [Case] {
    let router4 = IPv4Address(10, 0, 0, 254)
    let big4 = IPv4Packet(
      source: Sample.v4A, destination: Sample.v4B, protocol: .udp,
      payload: UDPDatagram(sourcePort: 1, destinationPort: 2, payload: ByteBuffer(repeating: 7, count: 1472))
        .bytes(source: .v4(Sample.v4A), destination: .v4(Sample.v4B)), dontFragment: true
    ).bytes
    let fragNeeded = try ICMPv4Message.fragmentationNeededPacket(for: big4, from: router4, nextHopMTU: 1450)
    let router6 = IPv6Address("fd00::fe")!
    let big6 = IPv6Packet(
      source: Sample.v6A, destination: Sample.v6B, upperLayerProtocol: .udp,
      payload: UDPDatagram(sourcePort: 1, destinationPort: 2, payload: ByteBuffer(repeating: 7, count: 1800))
        .bytes(source: .v6(Sample.v6A), destination: .v6(Sample.v6B))
    ).bytes
    let ptb = try ICMPv6Message.packetTooBigPacket(for: big6, from: router6, mtu: 1400)
    let arpRequest = ARPPacket.request(senderMAC: Sample.macA, senderIP: Sample.v4A, targetIP: Sample.v4B)
    var tagged6 = Sample.tunnel6()
    tagged6.vlanTags = [VLANTag(vid: 42)]
    let inner4 = Sample.udp4()
    return [
      Case(
        name: "udp4", frame: Sample.udp4(),
        expect: [
          "eth.src": "02:00:00:00:00:0a", "ip.src": "10.0.0.1", "ip.dst": "10.0.0.2",
          "ip.checksum.status": "1",
          "ip.ttl": "64", "ip.id": "0x1234", "ip.flags.df": "1", "udp.srcport": "40000",
          "udp.dstport": "33333",
          "udp.length": "18", "udp.checksum.status": "1",
        ]),
      Case(
        name: "dot1q", frame: Sample.udp4(vlanTags: [VLANTag(priority: 5, vid: 42)]),
        expect: [
          "vlan.id": "42", "vlan.priority": "5", "ip.checksum.status": "1", "udp.checksum.status": "1",
        ]),
      Case(
        name: "qinq", frame: Sample.udp4(vlanTags: [VLANTag(tpid: .qinq, vid: 100), VLANTag(vid: 200)]),
        expect: ["ieee8021ad.id": "100", "vlan.id": "200", "ip.dst": "10.0.0.2"]),
      Case(
        name: "arp-request", frame: arpRequest.frame.bytes,
        expect: [
          "arp.opcode": "1", "arp.src.hw_mac": "02:00:00:00:00:0a", "arp.src.proto_ipv4": "10.0.0.1",
          "arp.dst.proto_ipv4": "10.0.0.2", "eth.dst": "ff:ff:ff:ff:ff:ff",
        ]),
      Case(
        name: "arp-reply", frame: ARPPacket.reply(to: arpRequest, with: Sample.macB).frame.bytes,
        expect: [
          "arp.opcode": "2", "arp.src.hw_mac": "02:00:00:00:00:0b", "arp.src.proto_ipv4": "10.0.0.2",
          "arp.dst.hw_mac": "02:00:00:00:00:0a", "eth.dst": "02:00:00:00:00:0a",
        ]),
      Case(
        name: "ipv6-ext-udp", frame: Sample.frame6(Sample.udp6WithExtensions()),
        expect: [
          "ipv6.src": "fd00::a", "ipv6.dst": "fd00::b", "ipv6.hlim": "33", "ipv6.flow": "0x012345",
          "ipv6.fraghdr.ident": "0xdeadbeef", "ipv6.opt.router_alert": "0", "udp.srcport": "5000",
          "udp.dstport": "6000", "udp.checksum.status": "1",
        ]),
      Case(
        name: "tcp4", frame: Sample.tcp4(),
        expect: [
          "tcp.srcport": "40001", "tcp.dstport": "80", "tcp.flags.syn": "1", "tcp.checksum.status": "1",
          "tcp.options.mss_val": "1460", "tcp.hdr_len": "24",
        ]),
      Case(
        name: "icmp-frag-needed",
        frame: EthernetFrame(
          destination: Sample.macA, source: Sample.macB, etherType: .ipv4, payload: fragNeeded.bytes
        )
        .bytes,
        expect: [
          "ip.src": "10.0.0.254,10.0.0.1", "ip.dst": "10.0.0.1,10.0.0.2", "ip.checksum.status": "1,1",
          "icmp.type": "3", "icmp.code": "4", "icmp.mtu": "1450", "icmp.checksum.status": "1",
          "ip.len": "576,1500",
        ]),
      Case(
        name: "icmpv6-packet-too-big", frame: Sample.frame6(ptb),
        expect: [
          "ipv6.src": "fd00::fe,fd00::a", "ipv6.dst": "fd00::a,fd00::b", "ipv6.plen": "1240,1808",
          "icmpv6.type": "2", "icmpv6.code": "0", "icmpv6.mtu": "1400", "icmpv6.checksum.status": "1",
        ]),
      Case(
        name: "vxlan4", frame: Sample.tunnel4().encapsulate(inner4, vni: try VNI(5001)),
        expect: [
          "ip.src": "192.168.1.1,10.0.0.1", "ip.dst": "192.168.1.2,10.0.0.2", "ip.checksum.status": "1,1",
          "udp.srcport": "\(FlowHash.sourcePort(innerFrame: inner4)),40000", "udp.dstport": "4789,33333",
          "vxlan.vni": "5001", "vxlan.flags": "0x0800", "vxlan.flag_i": "1", "udp.checksum.status": "3,1",
          "eth.src": "02:00:00:00:01:01,02:00:00:00:00:0a",
        ]),
      Case(
        name: "vxlan6-tagged",
        frame: tagged6.encapsulate(Sample.tcp4(), vni: try VNI(0xFF_FFFF), sourcePort: 49152),
        expect: [
          "vlan.id": "42", "ipv6.src": "2001:db8::1", "ipv6.dst": "2001:db8::2", "ip.src": "10.0.0.1",
          "udp.srcport": "49152", "udp.dstport": "4789", "udp.checksum.status": "1", "vxlan.vni": "16777215",
          "tcp.checksum.status": "1", "tcp.dstport": "80",
        ]),
    ]
  }

  @Test func tsharkAgreesWithWeftBuiltFrames() throws {
    let cases = try Self.cases()
    let pcap = try ExternalTool.writePcap(cases.map(\.frame))
    defer { try? FileManager.default.removeItem(at: pcap.deletingLastPathComponent()) }
    let fields = Set(cases.flatMap(\.expect.keys)).sorted() + ["_ws.malformed", "_ws.expert.severity"]
    var args = [
      "-r", pcap.path, "-n", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
      "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
      "-E", "separator=/t",
    ]
    for f in fields { args += ["-e", f] }
    let output = String(decoding: try ExternalTool.run(ExternalTool.tshark, args), as: UTF8.self)
    let lines = output.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
    try #require(lines.count == cases.count, "tshark printed \(lines.count) lines for \(cases.count) frames")
    for (c, line) in zip(cases, lines) {
      let values = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
      try #require(values.count == fields.count, "\(c.name): \(values.count) columns")
      let got = Dictionary(uniqueKeysWithValues: zip(fields, values))
      for (key, want) in c.expect.sorted(by: { $0.key < $1.key }) {
        #expect(got[key] == want, "\(c.name): tshark \(key) = \(got[key] ?? "-"), Weft meant \(want)")
      }
      #expect(got["_ws.malformed"] == "", "\(c.name): tshark reports a malformed packet")
    }
  }
}
