import NIOCore
import Testing
import WeftWire

/// A query as `dig` sends it: ID, RD set, one question.
func dnsQuery(_ name: String, type: UInt16 = 1, id: UInt16 = 0xbeef, flags: UInt16 = 0x0100) -> ByteBuffer {
  var b = ByteBuffer()
  b.writeInteger(id)
  b.writeInteger(flags)
  b.writeInteger(UInt16(1))
  for _ in 0..<3 { b.writeInteger(UInt16(0)) }
  for label in name.split(separator: ".") {
    b.writeInteger(UInt8(label.utf8.count))
    b.writeString(String(label))
  }
  b.writeInteger(UInt8(0))
  b.writeInteger(type)
  b.writeInteger(UInt16(1))
  return b
}

@Suite("DNS queries and answers")
struct DNSMessageTests {
  @Test func aQueryIsReadAndAnsweredWithARecords() throws {
    let query = try DNSMessage.parseQuery(dnsQuery("Backend.WEFT"))
    #expect(query.id == 0xbeef && query.recursionDesired)
    #expect(query.question == DNSQuestion(name: "backend.weft", type: 1))
    var answer = DNSMessage.answer(
      query, addresses: [IPv4Address("100.64.0.1")!, IPv4Address("100.64.0.2")!], ttl: 7)
    #expect(answer.readInteger(as: UInt16.self) == 0xbeef)
    #expect(answer.readInteger(as: UInt16.self) == 0x8580)  // QR AA RD RA, NOERROR
    #expect(answer.readInteger(as: UInt16.self) == 1)
    #expect(answer.readInteger(as: UInt16.self) == 2)
    answer.moveReaderIndex(forwardBy: 4)
    #expect(answer.readBytes(length: 14) == [7] + Array("backend".utf8) + [4] + Array("weft".utf8) + [0])
    answer.moveReaderIndex(forwardBy: 4)
    #expect(answer.readInteger(as: UInt16.self) == 0xC00C)
    #expect(answer.readInteger(as: UInt16.self) == 1)
    #expect(answer.readInteger(as: UInt16.self) == 1)
    #expect(answer.readInteger(as: UInt32.self) == 7)
    #expect(answer.readInteger(as: UInt16.self) == 4)
    #expect(answer.readBytes(length: 4) == [100, 64, 0, 1])
  }

  @Test func errorsCarryTheCodeAndNoRecords() throws {
    let query = try DNSMessage.parseQuery(dnsQuery("nosuch.weft", flags: 0))
    var answer = DNSMessage.answer(query, addresses: [IPv4Address("1.2.3.4")!], code: .nameError)
    answer.moveReaderIndex(forwardBy: 2)
    #expect(answer.readInteger(as: UInt16.self) == 0x8483)  // QR AA RA, NXDOMAIN, RD not asked
    #expect(answer.readInteger(as: UInt16.self) == 1)
    #expect(answer.readInteger(as: UInt16.self) == 0)
    var formerr = DNSMessage.formatError(id: 9)
    #expect(formerr.readInteger(as: UInt16.self) == 9)
    #expect(formerr.readInteger(as: UInt16.self) == 0x8001)
  }

  @Test func malformedQueriesAreRefusedWithAReason() {
    var truncated = dnsQuery("a.weft")
    truncated.moveWriterIndex(to: truncated.writerIndex - 3)
    let response = dnsQuery("a.weft", flags: 0x8000)
    var compressed = dnsQuery("a.weft")
    compressed.setInteger(UInt8(0xC0), at: 12)
    let notQuery = dnsQuery("a.weft", flags: 0x1000)  // opcode 2 (STATUS)
    let cases: [(ByteBuffer, WireError.Code)] = [
      (ByteBuffer(bytes: [1, 2, 3]), .truncated), (truncated, .truncated), (response, .badField),
      (compressed, .badField), (notQuery, .unsupported),
    ]
    for (input, code) in cases {
      let error = #expect(throws: WireError.self) { try DNSMessage.parseQuery(input) }
      #expect(error?.code == code, "\(error?.description ?? "accepted")")
    }
  }

  @Test func randomBytesNeverCrashTheParser() {
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<2_000 {
      let bytes = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng)
      }
      _ = try? DNSMessage.parseQuery(ByteBuffer(bytes: bytes))
    }
  }
}
