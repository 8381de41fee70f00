import NIOCore
import Testing
import WeftWire

@Suite struct VXLANTests {
  @Test func headerEncoding() throws {
    var b = ByteBuffer()
    try VXLANPacket(vni: 0xABCDEF, payload: ByteBuffer(bytes: [1, 2])).write(to: &b)
    #expect(hexString(b) == "08000000abcdef000102")
  }

  @Test func vniBeyond24BitsRejectedOnBuild() {
    expectWireError(.badField) { () throws(WireError) in
      try VXLANPacket(vni: 0x100_0000, payload: ByteBuffer())
    }
    expectWireError(.badField) { () throws(WireError) in try VNI(0xFFFF_FFFF) }
    #expect(VNI(rawValue: 0x100_0000) == nil)
    #expect(VNI(rawValue: 0xFF_FFFF)?.rawValue == 0xFF_FFFF)
    #expect((try? VNI(0)) != nil)
  }

  @Test func iFlagRequired() {
    expectWireError(.badField) { () throws(WireError) in
      try VXLANPacket(decoding: hexBuffer("00000000 00000100"))
    }
    expectWireError(.badField) { () throws(WireError) in
      try VXLANPacket(decoding: hexBuffer("f7ffffff ffffffff"))
    }
  }

  @Test func reservedBitsIgnored() throws {
    let p = try VXLANPacket(decoding: hexBuffer("ffffffff 123456ff aabb"))
    #expect(p.vni.rawValue == 0x123456)
    #expect(p.payload == ByteBuffer(bytes: [0xaa, 0xbb]))
    var out = ByteBuffer()
    p.write(to: &out)
    #expect(hexString(out) == "08000000" + "12345600" + "aabb")
  }

  @Test func truncated() {
    expectEveryPrefixThrows(hexBuffer("08000000 00000100")) { b throws(WireError) in
      try VXLANPacket(decoding: b)
    }
  }

  @Test func encapsulateDecapsulateIPv4() throws {
    let inner = Sample.udp4()
    let tunnel = Sample.tunnel4()
    let vni = try VNI(5001)
    let outer = tunnel.encapsulate(inner, vni: vni)
    #expect(outer.readableBytes == inner.readableBytes + 50)
    #expect(tunnel.overhead == 50)
    let f = try VXLANFrame(decoding: outer)
    #expect(f.vni == vni)
    #expect(f.innerFrame == inner)
    #expect(f.ethernet.source == tunnel.sourceMAC && f.ethernet.destination == tunnel.destinationMAC)
    #expect(f.ip.source == tunnel.source && f.ip.destination == tunnel.destination)
    #expect(f.udp.destinationPort == 4789)
    #expect(f.udp.checksum == 0)
    #expect(FlowHash.portRange.contains(f.udp.sourcePort))
    #expect(f.udp.sourcePort == FlowHash.sourcePort(innerFrame: inner))
    let (v, frame) = try VXLANEncapsulation.decapsulate(udpPayload: f.udp.payload)
    #expect(v == vni && frame == inner)
    expectEveryPrefixThrows(outer) { b throws(WireError) in try VXLANFrame(decoding: b) }
  }

  @Test func encapsulateIPv6WithChecksumAndTags() throws {
    var tunnel = Sample.tunnel6()
    tunnel.vlanTags = [VLANTag(vid: 42)]
    #expect(tunnel.udpChecksum)
    let inner = Sample.frame6(Sample.udp6WithExtensions())
    let outer = tunnel.encapsulate(inner, vni: try VNI(0xFFFFFF), sourcePort: 50000)
    #expect(outer.readableBytes == inner.readableBytes + 74)
    let f = try VXLANFrame(decoding: outer)
    #expect(f.ethernet.vlanIDs == [42])
    #expect(f.vni.rawValue == 0xFFFFFF)
    #expect(f.udp.sourcePort == 50000)
    #expect(f.udp.checksum != 0)
    #expect(f.udp.isChecksumValid(source: f.ip.source, destination: f.ip.destination))
    #expect(f.innerFrame == inner)
    var corrupt = outer
    corrupt.setInteger(UInt8(0x99), at: corrupt.writerIndex - 1)
    expectWireError(.badChecksum) { () throws(WireError) in try VXLANFrame(decoding: corrupt) }
  }

  @Test func mixedFamiliesRejected() {
    expectWireError(.badField) { () throws(WireError) in
      try VXLANEncapsulation(
        sourceMAC: .zero, destinationMAC: .zero, source: .v4(Sample.v4A), destination: .v6(Sample.v6A))
    }
  }

  @Test func nonVXLANOuterFramesRejected() {
    expectWireError(.unsupported) { () throws(WireError) in try VXLANFrame(decoding: Sample.udp4()) }
    expectWireError(.unsupported) { () throws(WireError) in try VXLANFrame(decoding: Sample.tcp4()) }
  }
}
