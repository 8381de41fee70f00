/// Builds a netlink message body: fixed headers followed by type-length-value attributes,
/// each padded to four bytes. Integers are in host byte order unless a method says otherwise.
public struct NetlinkEncoder: Sendable {
  /// The bytes written so far.
  public private(set) var bytes: [UInt8] = []

  /// Creates an empty encoder.
  public init() {}

  /// Appends raw bytes without padding.
  public mutating func append(_ raw: [UInt8]) { self.bytes += raw }

  /// Appends a host-order integer.
  public mutating func append<T: FixedWidthInteger>(_ value: T) {
    withUnsafeBytes(of: value.littleEndian) { self.bytes += $0 }
  }

  /// Appends zeros up to the next four-byte boundary.
  public mutating func pad() {
    while self.bytes.count % 4 != 0 { self.bytes.append(0) }
  }

  /// Appends an attribute with raw data.
  public mutating func attribute(_ type: UInt16, _ data: [UInt8]) {
    self.append(UInt16(4 + data.count))
    self.append(type)
    self.bytes += data
    self.pad()
  }

  /// Appends a host-order integer attribute.
  public mutating func attribute<T: FixedWidthInteger>(_ type: UInt16, _ value: T) {
    self.attribute(type, withUnsafeBytes(of: value.littleEndian) { Array($0) })
  }

  /// Appends a big-endian (network order) 16-bit attribute, as for UDP ports.
  public mutating func attribute(_ type: UInt16, bigEndian value: UInt16) {
    self.attribute(type, [UInt8(value >> 8), UInt8(value & 0xff)])
  }

  /// Appends a NUL-terminated string attribute.
  public mutating func attribute(_ type: UInt16, string: String) {
    self.attribute(type, Array(string.utf8) + [0])
  }

  /// Appends an empty-bodied flag attribute.
  public mutating func flag(_ type: UInt16) { self.attribute(type, []) }

  /// Appends a nested attribute whose body `build` writes; sets NLA_F_NESTED.
  public mutating func nested(_ type: UInt16, _ build: (inout NetlinkEncoder) -> Void) {
    let start = self.bytes.count
    self.append(UInt16(0))
    self.append(type | 0x8000)
    build(&self)
    self.pad()
    let length = UInt16(self.bytes.count - start)
    self.bytes[start] = UInt8(length & 0xff)
    self.bytes[start + 1] = UInt8(length >> 8)
  }
}

/// One attribute of a received netlink message.
public struct NetlinkAttribute: Sendable {
  /// The attribute type with the nested and byte-order flags cleared.
  public var type: UInt16
  /// The attribute payload (without padding).
  public var data: ArraySlice<UInt8>

  /// The payload as a host-order integer, or `nil` when the sizes differ.
  public func integer<T: FixedWidthInteger>(_: T.Type = T.self) -> T? {
    guard self.data.count == MemoryLayout<T>.size else { return nil }
    var v: T = 0
    for (i, b) in self.data.enumerated() { v |= T(b) << (8 * i) }
    return v
  }

  /// The payload as a big-endian 16-bit value.
  public var bigEndianUInt16: UInt16? {
    guard self.data.count == 2 else { return nil }
    return UInt16(self.data[self.data.startIndex]) << 8 | UInt16(self.data[self.data.startIndex + 1])
  }

  /// The payload as a string, without a trailing NUL.
  public var string: String {
    String(decoding: self.data.prefix(while: { $0 != 0 }), as: UTF8.self)
  }

  /// The attributes nested in this one.
  public var nested: [NetlinkAttribute] { NetlinkAttribute.parse(self.data) }

  /// Parses a run of attributes; stops quietly at the first malformed one.
  public static func parse(_ bytes: ArraySlice<UInt8>) -> [NetlinkAttribute] {
    var out: [NetlinkAttribute] = []
    var i = bytes.startIndex
    while bytes.endIndex - i >= 4 {
      let len = Int(UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8)
      let type = (UInt16(bytes[i + 2]) | UInt16(bytes[i + 3]) << 8) & 0x3fff
      guard len >= 4, i + len <= bytes.endIndex else { break }
      out.append(NetlinkAttribute(type: type, data: bytes[(i + 4)..<(i + len)]))
      i += (len + 3) & ~3
    }
    return out
  }
}

extension Array where Element == NetlinkAttribute {
  /// The first attribute of `type`, if present.
  public func first(_ type: UInt16) -> NetlinkAttribute? { self.first { $0.type == type } }
}

/// Reads host-order integers out of a byte slice at an offset; `nil` past the end.
extension ArraySlice where Element == UInt8 {
  func readInteger<T: FixedWidthInteger>(at offset: Int, as: T.Type = T.self) -> T? {
    let start = self.startIndex + offset
    guard offset >= 0, start + MemoryLayout<T>.size <= self.endIndex else { return nil }
    var v: T = 0
    for i in 0..<MemoryLayout<T>.size { v |= T(self[start + i]) << (8 * i) }
    return v
  }
}
