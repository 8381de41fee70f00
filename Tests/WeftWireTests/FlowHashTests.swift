import NIOCore
import Testing
import WeftWire

@Suite struct FlowHashTests {
  @Test func deterministicAndInRange() {
    let f = Sample.udp4(sport: 1111, dport: 2222)
    let p = FlowHash.sourcePort(innerFrame: f)
    #expect(FlowHash.portRange.contains(p))
    #expect(p == FlowHash.sourcePort(innerFrame: Sample.udp4(payload: [9, 9, 9], sport: 1111, dport: 2222)))
    // Pinned so a change to the hash (which would reshuffle ECMP paths on upgrade) is noticed.
    #expect(FlowKey(frame: f).hash() == 13_201_267_813_062_750_526)
    #expect(p == 54049)
    #expect(
      p != FlowHash.sourcePort(innerFrame: f, seed: 1) || p != FlowHash.sourcePort(innerFrame: f, seed: 2))
  }

  @Test func keyExtraction() {
    #expect(
      FlowKey(frame: Sample.tcp4(sport: 5, dport: 6))
        == .ip(
          source: .v4(Sample.v4A), destination: .v4(Sample.v4B), protocol: .tcp, sourcePort: 5,
          destinationPort: 6))
    #expect(
      FlowKey(frame: Sample.frame6(Sample.udp6WithExtensions()))
        == .ip(
          source: .v6(Sample.v6A), destination: .v6(Sample.v6B), protocol: .udp, sourcePort: 5000,
          destinationPort: 6000))
    let arp = ARPPacket.request(senderMAC: Sample.macA, senderIP: Sample.v4A, targetIP: Sample.v4B).frame
      .bytes
    #expect(FlowKey(frame: arp) == .link(source: Sample.macA, destination: .broadcast, etherType: .arp))
    #expect(
      FlowKey(frame: ByteBuffer(bytes: [1, 2]))
        == .link(source: .zero, destination: .zero, etherType: EtherType(0)))
    // Tagged inner frames hash on the IP flow too.
    #expect(
      FlowKey(frame: Sample.udp4(sport: 1, dport: 2, vlanTags: [VLANTag(vid: 3)]))
        == FlowKey(frame: Sample.udp4(sport: 1, dport: 2)))
  }

  @Test func fragmentsIgnorePorts() {
    let frag = IPv4Packet(
      source: Sample.v4A, destination: Sample.v4B, protocol: .udp,
      payload: ByteBuffer(repeating: 1, count: 16),
      moreFragments: true)
    let f = EthernetFrame(
      destination: Sample.macB, source: Sample.macA, etherType: .ipv4, payload: frag.bytes)
    #expect(
      FlowKey(frame: f.bytes)
        == .ip(
          source: .v4(Sample.v4A), destination: .v4(Sample.v4B), protocol: .udp, sourcePort: 0,
          destinationPort: 0))
  }

  @Test func spreadsFlowsEvenly() {
    let buckets = 64
    let flows = 32_000
    var counts = [Int](repeating: 0, count: buckets)
    var ports = Set<UInt16>()
    for i in 0..<flows {
      let key = FlowKey.ip(
        source: .v4(IPv4Address(10, 0, UInt8(i >> 8 & 0xff), UInt8(i & 0xff))), destination: .v4(Sample.v4B),
        protocol: .tcp, sourcePort: UInt16(truncatingIfNeeded: 32768 + i % 1000), destinationPort: 443)
      let p = FlowHash.sourcePort(for: key)
      #expect(FlowHash.portRange.contains(p))
      ports.insert(p)
      counts[Int(p - FlowHash.portRange.lowerBound) * buckets / 16384] += 1
    }
    let expected = Double(flows) / Double(buckets)
    let chi2 = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
    // 63 degrees of freedom: p=0.001 critical value is about 103.
    #expect(chi2 < 103, "chi-square \(chi2), counts \(counts)")
    // Balls into 16384 bins: about 14_000 distinct ports are expected.
    #expect(ports.count > 13_000)
    // Flows differing only in the source port also spread.
    let onlyPorts = Set(
      (0..<1000).map { sp in
        FlowHash.sourcePort(
          for: .ip(
            source: .v4(Sample.v4A), destination: .v4(Sample.v4B), protocol: .udp, sourcePort: UInt16(sp),
            destinationPort: 53))
      })
    #expect(onlyPorts.count > 950)
  }
}

@Suite struct PcapWriterTests {
  @Test func globalHeaderAndRecords() {
    var w = PcapWriter()
    w.append(ByteBuffer(bytes: [1, 2, 3]), seconds: 1, microseconds: 2)
    let b = w.bytes
    #expect(b.count == 24 + 16 + 3)
    #expect(Array(b[0..<4]) == [0xd4, 0xc3, 0xb2, 0xa1])
    #expect(Array(b[20..<24]) == [1, 0, 0, 0])
    #expect(Array(b[24..<40]) == [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0])
    #expect(w.count == 1)
    var small = PcapWriter(snapLength: 2)
    small.append(ByteBuffer(bytes: [1, 2, 3]))
    #expect(Array(small.bytes[32..<40]) == [2, 0, 0, 0, 3, 0, 0, 0])
    #expect(small.bytes.count == 24 + 16 + 2)
  }
}
