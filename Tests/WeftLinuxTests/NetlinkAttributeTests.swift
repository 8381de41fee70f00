import Testing
import WeftLinux

@Suite("netlink attribute encoding (pure)")
struct NetlinkAttributeTests {
  @Test func attributesArePaddedAndNestedLengthsCover() {
    var e = NetlinkEncoder()
    e.attribute(3, string: "vx0")  // 4 + 4 bytes ("vx0\0"), no padding needed
    e.attribute(4, UInt8(1))  // 4 + 1, padded to 8
    e.nested(18) { n in
      n.attribute(1, string: "vxlan")  // 4 + 6 -> 12
      n.attribute(2, bigEndian: 4789)  // 4 + 2 -> 8
    }
    #expect(e.bytes.count == 8 + 8 + 4 + 12 + 8)
    #expect(Array(e.bytes[0..<4]) == [8, 0, 3, 0])
    #expect(Array(e.bytes[8..<13]) == [5, 0, 4, 0, 1])
    #expect(Array(e.bytes[16..<20]) == [24, 0, 18, 0x80])  // NLA_F_NESTED set
    let parsed = NetlinkAttribute.parse(e.bytes[...])
    #expect(parsed.map(\.type) == [3, 4, 18])
    #expect(parsed[0].string == "vx0")
    #expect(parsed[1].integer(UInt8.self) == 1)
    #expect(parsed[1].integer(UInt32.self) == nil)
    let inner = parsed[2].nested
    #expect(inner.first(1)?.string == "vxlan")
    #expect(inner.first(2)?.bigEndianUInt16 == 4789)
  }

  @Test func malformedAttributesStopParsingWithoutTrapping() {
    #expect(NetlinkAttribute.parse([3, 0, 1, 0][...]).isEmpty)  // length below the header
    #expect(NetlinkAttribute.parse([200, 0, 1, 0, 9][...]).isEmpty)  // length past the end
    #expect(NetlinkAttribute.parse([8, 0, 1, 0, 1, 2][...]).isEmpty)
    let oneGood: [UInt8] = [5, 0, 7, 0, 42, 0, 0, 0, 0xff, 0xff]
    #expect(NetlinkAttribute.parse(oneGood[...]).map(\.type) == [7])
  }
}
