import NIOCore
import Testing
import WeftWire

@Suite struct ChecksumTests {
  @Test func classicIPv4HeaderVector() {
    let header = hexBuffer("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")
    #expect(Checksum.compute(header) == 0)
    let zeroed = hexBuffer("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7")
    #expect(Checksum.compute(zeroed) == 0xb861)
  }

  @Test func rfc1071Example() {
    // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    var c = Checksum()
    c.add(hexBuffer("0001f203f4f5f6f7"))
    #expect(c.folded == 0xddf2)
    #expect(c.value == ~0xddf2)
  }

  @Test func piecesOfAnyLengthMatchTheWhole() {
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<200 {
      let n = Int.random(in: 0...300, using: &rng)
      let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
      let whole = Checksum.compute(ByteBuffer(bytes: bytes))
      var c = Checksum()
      var i = 0
      while i < n {
        let k = min(n - i, Int.random(in: 0...11, using: &rng))
        c.add(ByteBuffer(bytes: bytes[i..<i + k]))
        i += k
      }
      #expect(c.value == whole)
    }
  }

  @Test func bulkPiecesMatchANaiveWordSum() {
    // Pieces long enough for the four-accumulator path, at odd and even stream positions.
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<200 {
      let n = Int.random(in: 0...3000, using: &rng)
      let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
      var naive: UInt32 = 0
      for i in stride(from: 0, to: n, by: 2) {
        let high = UInt32(bytes[i]) << 8
        let low: UInt32 = i + 1 < n ? UInt32(bytes[i + 1]) : 0
        naive += high | low
      }
      while naive >> 16 != 0 { naive = (naive & 0xffff) + (naive >> 16) }
      let expected = UInt16(naive)
      var c = Checksum()
      var i = 0
      while i < n {
        let k = min(n - i, Int.random(in: 0...700, using: &rng))
        bytes[i..<i + k].withUnsafeBytes { c.add(bytes: $0) }
        i += k
      }
      // 0 and 0xffff are the same number in one's complement.
      let same =
        c.folded == expected || (c.folded == 0xffff && expected == 0) || (c.folded == 0 && expected == 0xffff)
      #expect(same)
    }
  }

  @Test func wordAfterOddPieceIsAligned() {
    var c = Checksum()
    c.add(octets: [0x12])
    c.add(UInt16(0x3456))
    c.add(octets: [0x78])
    #expect(c.value == Checksum.compute(hexBuffer("12345678")))
  }

  @Test func incrementalAdjustMatchesRecompute() throws {
    var header = hexBytes("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")
    // Decrement the TTL (0x40 -> 0x3f) in the TTL/protocol word.
    let adjusted = Checksum.adjust(0xb861, replacing: 0x4011, with: 0x3f11)
    header[8] = 0x3f
    header[10] = 0
    header[11] = 0
    #expect(adjusted == Checksum.compute(ByteBuffer(bytes: header)))
  }

  @Test func largeBufferDoesNotOverflow() {
    let buffer = ByteBuffer(repeating: 0xff, count: 1 << 20)
    #expect(Checksum.compute(buffer) == 0)
    let ones = ByteBuffer(repeating: 0x01, count: 65536)
    // 32768 words of 0x0101: sum = 0x808000, folded 0x8000 + 0x80 = 0x8080.
    var c = Checksum()
    c.add(ones)
    #expect(c.folded == 0x8080)
  }
}
