import Glibc
import Testing
import WeftWire

@testable import WeftDatapath

/// A TCP/IPv4 packet 100.96.1.2:`sourcePort` -> 100.96.2.2:5201 with timestamp options (a 32-byte
/// TCP header), sequence `sequence`, `flags`, and `payload` bytes counting up from `seed`; the
/// checksum left as the kernel leaves it for offload (the pseudo-header sum) unless `complete`.
func tcpPacket(
  payload: Int, sequence: UInt32 = 1_000_000, flags: UInt8 = 0x10, seed: Int = 0, complete: Bool = false,
  sourcePort: UInt16 = 40000
) -> [UInt8] {
  let total = 20 + 32 + payload
  var p = [UInt8](repeating: 0, count: total)
  p[0] = 0x45
  p[2] = UInt8(total >> 8 & 0xff)
  p[3] = UInt8(total & 0xff)
  p[4] = 0x12
  p[5] = 0x34
  p[6] = 0x40
  p[8] = 64
  p[9] = 6
  p.replaceSubrange(12..<16, with: [100, 96, 1, 2] as [UInt8])
  p.replaceSubrange(16..<20, with: [100, 96, 2, 2] as [UInt8])
  var ipSum = Checksum()
  ipSum.add(octets: p[0..<20])
  p[10] = UInt8(ipSum.value >> 8)
  p[11] = UInt8(ipSum.value & 0xff)
  p[20] = UInt8(sourcePort >> 8)
  p[21] = UInt8(sourcePort & 0xff)
  p[22] = 0x14
  p[23] = 0x51
  for i in 0..<4 { p[24 + i] = UInt8(truncatingIfNeeded: sequence >> (24 - 8 * UInt32(i))) }
  p[28] = 0xab  // acknowledgement
  p[32] = 0x80  // 32-byte header
  p[33] = flags
  p[34] = 0x01  // window
  p.replaceSubrange(40..<52, with: [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9] as [UInt8])  // NOP NOP timestamps
  for i in 0..<payload { p[52 + i] = UInt8(truncatingIfNeeded: seed + i) }
  var pseudo = Checksum()
  pseudo.add(octets: p[12..<20])
  pseudo.add(UInt16(6))
  pseudo.add(UInt16(total - 20))
  var field = pseudo.folded
  if complete {
    var full = pseudo
    full.add(octets: p[20...])
    field = full.value
  }
  p[36] = UInt8(field >> 8)
  p[37] = UInt8(field & 0xff)
  return p
}

/// Ten virtio header bytes (little-endian fields).
func virtio(flags: UInt8 = 1, gso: UInt8, headers: Int, size: Int, start: Int = 20, offset: Int = 16)
  -> [UInt8]
{
  var h: [UInt8] = [flags, gso]
  for field in [headers, size, start, offset] {
    h.append(UInt8(truncatingIfNeeded: field))
    h.append(UInt8(truncatingIfNeeded: field >> 8))
  }
  return h
}

/// True when the transport checksum of an IPv4 packet (no options) verifies.
func transportChecksumValid(_ ip: ArraySlice<UInt8>) -> Bool {
  let ip = Array(ip)
  var sum = Checksum()
  sum.add(octets: ip[12..<20])
  sum.add(UInt16(ip[9]))
  sum.add(UInt16(ip.count - 20))
  sum.add(octets: ip[20...])
  return sum.value == 0
}

/// True when the IPv4 header checksum verifies.
func ipChecksumValid(_ ip: ArraySlice<UInt8>) -> Bool {
  var sum = Checksum()
  sum.add(octets: ip.prefix(20))
  return sum.value == 0
}

let frameHeader = [UInt8](repeating: 0x5a, count: VTEPCodec.innerOffset)

/// One call of the segmenter: what it reported and the bytes it wrote.
struct SegmenterCall {
  var frames: VTEPSegmenter.Frames
  var bytes: [UInt8]

  /// The IPv4 packets of the frames written.
  var packets: [ArraySlice<UInt8>] {
    stride(from: 0, to: self.frames.length, by: self.frames.frameSize).map {
      self.bytes[($0 + VTEPCodec.innerOffset)..<min($0 + self.frames.frameSize, self.frames.length)]
    }
  }
}

/// Segments `packet` behind `header` until done.
func segment(_ packet: [UInt8], _ header: [UInt8], maxBytes: Int = 65_507, maxFrames: Int = 64) throws
  -> [SegmenterCall]
{
  var packet = packet
  var out = [UInt8](repeating: 0, count: 65_536)
  var calls: [SegmenterCall] = []
  let virtioHeader = header.withUnsafeBytes { VirtioHeader($0) }
  try packet.withUnsafeMutableBytes { p in
    var segmenter = try VTEPSegmenter(packet: p, header: virtioHeader)
    while true {
      let frames = out.withUnsafeMutableBytes { o in
        frameHeader.withUnsafeBytes { h in
          segmenter.next(into: o, frameHeader: h, maxBytes: maxBytes, maxFrames: maxFrames)
        }
      }
      guard let frames else { break }
      calls.append(SegmenterCall(frames: frames, bytes: Array(out[..<frames.length])))
    }
  }
  return calls
}

/// Offers each inner packet, behind VXLAN framing, to a coalescer as the receive loop does;
/// returns each TUN write (virtio header and packet) as bytes.
func coalesce(_ segments: [[UInt8]], mtu: Int = 1450) -> [[UInt8]] {
  var writes: [[UInt8]] = []
  var coalescer = VTEPCoalescer()
  let buffers = segments.map { s -> UnsafeMutableRawBufferPointer in
    let b = UnsafeMutableRawBufferPointer.allocate(byteCount: VTEPCodec.innerOffset + s.count, alignment: 8)
    b.initializeMemory(as: UInt8.self, repeating: 0)
    UnsafeMutableRawBufferPointer(rebasing: b[VTEPCodec.innerOffset...]).copyBytes(from: s)
    return b
  }
  defer { buffers.forEach { $0.deallocate() } }
  func flush() {
    let vectors = coalescer.finish()
    writes.append(vectors.flatMap { Array(UnsafeRawBufferPointer(start: $0.iov_base, count: $0.iov_len)) })
  }
  for b in buffers {
    let length = b.count - VTEPCodec.innerOffset
    if coalescer.append(b, length: length, vni: 7, mtu: mtu) { continue }
    if coalescer.count > 0 {
      flush()
      if coalescer.append(b, length: length, vni: 7, mtu: mtu) { continue }
    }
    writes.append([UInt8](repeating: 0, count: 10) + Array(b[VTEPCodec.innerOffset...]))
  }
  if coalescer.count > 0 { flush() }
  return writes
}

@Suite("userspace VTEP offloads: TSO/USO segmentation and receive coalescing (pure logic)")
struct VTEPOffloadTests {
  @Test func aTSOSuperPacketBecomesValidMTUSizedSegmentsInGSOTrains() throws {
    let payload = 64_000
    let superPacket = tcpPacket(payload: payload, flags: 0x19)  // ACK PSH FIN
    let calls = try segment(superPacket, virtio(gso: 1, headers: 52, size: 1398))
    // 46 segments of 1398 bytes (the last shorter); no train over 65,507 bytes or 64 frames.
    let all = calls.flatMap(\.packets)
    #expect(all.count == (payload + 1397) / 1398)
    #expect(calls.count == 2)
    for call in calls {
      #expect(call.frames.length <= 65_507 && call.frames.count <= 64)
      #expect(call.frames.frameSize == VTEPCodec.innerOffset + 52 + 1398)
      #expect(Array(call.bytes[0..<VTEPCodec.innerOffset]) == frameHeader)
    }
    var reassembled: [UInt8] = []
    for (i, slice) in all.enumerated() {
      let ip = Array(slice)
      let last = i == all.count - 1
      #expect(ip.count == (last ? 52 + payload - 1398 * i : 52 + 1398))
      #expect(Int(ip[2]) << 8 | Int(ip[3]) == ip.count)
      #expect(UInt16(ip[4]) << 8 | UInt16(ip[5]) == 0x1234 &+ UInt16(i))
      #expect(ipChecksumValid(ip[...]))
      #expect(transportChecksumValid(ip[...]), "segment \(i)")
      let sequence = VTEPCodec.load32(ip.withUnsafeBytes { UnsafeRawBufferPointer($0) }, 24)
      #expect(sequence == 1_000_000 + UInt32(1398 * i))
      #expect(ip[33] == (last ? 0x19 : 0x10), "PSH and FIN only on the last segment")
      #expect(Array(ip[40..<52]) == Array(superPacket[40..<52]))
      reassembled += ip[52...]
    }
    #expect(reassembled == Array(superPacket[52...]))
  }

  @Test func withoutGSOEveryFrameGoesAlone() throws {
    let calls = try segment(tcpPacket(payload: 5000), virtio(gso: 1, headers: 52, size: 1398), maxFrames: 1)
    #expect(calls.map(\.frames.count) == [1, 1, 1, 1])
    #expect(calls.allSatisfy { transportChecksumValid($0.bytes[VTEPCodec.innerOffset...]) })
  }

  @Test func aUSOSuperPacketBecomesDatagramsWithTheirOwnLengthAndChecksum() throws {
    var p = ipv4Packet("100.96.1.2", "100.96.2.2", payload: 4000)
    p[26] = 0x12  // a stale checksum: the segmenter computes each one
    let calls = try segment(p, virtio(gso: 5, headers: 28, size: 1400, offset: 6))
    let all = calls.flatMap(\.packets)
    #expect(all.map(\.count) == [1428, 1428, 1228])
    for ip in all {
      let udpLength = Int(ip[ip.startIndex + 24]) << 8 | Int(ip[ip.startIndex + 25])
      #expect(udpLength == ip.count - 20)
      #expect(transportChecksumValid(ip))
      #expect(ipChecksumValid(ip))
    }
  }

  @Test func aPartialChecksumIsCompletedAndThePacketGoesWhole() throws {
    let p = tcpPacket(payload: 300, flags: 0x18)
    let calls = try segment(p, virtio(gso: 0, headers: 0, size: 0))
    #expect(calls.count == 1 && calls[0].frames.count == 1)
    #expect(calls[0].bytes.count == VTEPCodec.innerOffset + p.count)
    #expect(transportChecksumValid(calls[0].bytes[VTEPCodec.innerOffset...]))
    // A complete packet without NEEDS_CSUM is passed as it is.
    let whole = tcpPacket(payload: 300, complete: true)
    let plain = try segment(whole, virtio(flags: 0, gso: 0, headers: 0, size: 0))
    #expect(Array(plain[0].bytes[VTEPCodec.innerOffset...]) == whole)
  }

  @Test func malformedOrUnsupportedSuperPacketsAreRefused() {
    #expect(throws: VTEPSegmenter.Failure.malformed) {
      _ = try segment([0x45] + [UInt8](repeating: 0, count: 10), virtio(gso: 1, headers: 52, size: 1398))
    }
    #expect(throws: VTEPSegmenter.Failure.malformed) {
      _ = try segment(tcpPacket(payload: 3000), virtio(gso: 1, headers: 52, size: 0))
    }
    #expect(throws: VTEPSegmenter.Failure.unsupported) {
      _ = try segment(tcpPacket(payload: 3000), virtio(gso: 4, headers: 72, size: 1398))  // TCPv6
    }
    #expect(throws: VTEPSegmenter.Failure.unsupported) {
      _ = try segment(tcpPacket(payload: 3000), virtio(gso: 5, headers: 28, size: 1398))  // USO on TCP
    }
    #expect(throws: VTEPSegmenter.Failure.malformed) {
      _ = try segment(tcpPacket(payload: 10), virtio(gso: 0, headers: 0, size: 0, start: 60, offset: 16))
    }
  }

  @Test func consecutiveSegmentsOfAFlowBecomeOneTSOWrite() throws {
    let segments = (0..<5).map { i in
      tcpPacket(
        payload: i == 4 ? 500 : 1398, sequence: 7_000 + UInt32(i * 1398), flags: i == 4 ? 0x18 : 0x10,
        seed: i * 1398, complete: true)
    }
    let writes = coalesce(segments)
    #expect(writes.count == 1)
    let w = writes[0]
    let header = w.withUnsafeBytes { VirtioHeader(UnsafeRawBufferPointer(rebasing: $0[0..<10])) }
    let expected = virtio(gso: 1, headers: 52, size: 1398).withUnsafeBytes { VirtioHeader($0) }
    #expect(header == expected)
    let ip = Array(w[10...])
    #expect(ip.count == 52 + 4 * 1398 + 500)
    #expect(Int(ip[2]) << 8 | Int(ip[3]) == ip.count)
    #expect(ipChecksumValid(ip[...]))
    #expect(ip[33] == 0x18, "the last segment's PSH is kept")
    // The checksum field holds the pseudo-header sum; completed, the packet verifies.
    var completed = ip
    try completed.withUnsafeMutableBytes { try VTEPSegmenter.completeChecksum($0, start: 20, offset: 16) }
    #expect(transportChecksumValid(completed[...]))
    let payload = (0..<(4 * 1398 + 500)).map { UInt8(truncatingIfNeeded: $0) }
    #expect(Array(ip[52...]) == payload)
  }

  @Test func segmentsThatGROWouldNotMergeAreWrittenApart() {
    func seg(_ i: Int, payload: Int = 1398, flags: UInt8 = 0x10, port: UInt16 = 40000, complete: Bool = true)
      -> [UInt8]
    {
      tcpPacket(
        payload: payload, sequence: 7_000 + UInt32(i * 1398), flags: flags, seed: i, complete: complete,
        sourcePort: port)
    }
    var corrupt = seg(1)
    corrupt[60] ^= 0xff
    let larger = tcpPacket(payload: 1398, sequence: 8_000, seed: 1, complete: true)
    // Expected: the IPv4 length of each write (1450: one full segment alone).
    let cases: [(String, [[UInt8]], [Int])] = [
      ("a gap in the sequence", [seg(0), seg(2)], [1450, 1450]),
      ("another flow", [seg(0), seg(1, port: 40001)], [1450, 1450]),
      ("a bad checksum", [seg(0), corrupt, seg(2)], [1450, 1450, 1450]),
      ("a partial checksum", [seg(0), seg(1, complete: false)], [1450, 1450]),
      ("a short segment ends the group", [seg(0), seg(1, payload: 100), seg(2)], [1550, 1450]),
      ("PSH ends the group", [seg(0), seg(1, flags: 0x18), seg(2)], [2848, 1450]),
      ("SYN is never merged", [seg(0, flags: 0x12), seg(1)], [1450, 1450]),
      ("a larger segment than the first", [seg(0, payload: 1000), larger], [1052, 1450]),
      ("over the MTU", [seg(0, payload: 1420), seg(1, payload: 1420)], [1472, 1472]),
      ("in order, merged", [seg(0), seg(1), seg(2)], [52 + 3 * 1398]),
    ]
    for (what, segments, lengths) in cases {
      let writes = coalesce(segments)
      #expect(writes.map { $0.count - 10 } == lengths, "\(what)")
      for w in writes {
        let merged = w.count - 10 > 1450 && w.count - 10 != 1472
        let header = Array(w[0..<10])
        #expect(merged ? header[1] == 1 : header.allSatisfy { $0 == 0 }, "\(what): TSO header only on merges")
      }
    }
  }
}
