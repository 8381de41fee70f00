/// A 48-bit IEEE 802 MAC address.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible, Comparable {
  /// The six octets, first octet in the most significant position of the tuple.
  public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

  /// Creates an address from six octets.
  public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8) {
    self.bytes = (a, b, c, d, e, f)
  }

  /// Creates an address from exactly six octets, or `nil` for any other count.
  public init?<C: Collection>(octets: C) where C.Element == UInt8 {
    guard octets.count == 6 else { return nil }
    let o = Array(octets)
    self.init(o[0], o[1], o[2], o[3], o[4], o[5])
  }

  /// Parses `aa:bb:cc:dd:ee:ff` (colons or dashes, either case).
  public init?(_ text: String) {
    let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
    guard parts.count == 6 else { return nil }
    var out: [UInt8] = []
    for p in parts {
      guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
      out.append(v)
    }
    self.init(octets: out)
  }

  /// The all-ones broadcast address.
  public static let broadcast = MACAddress(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
  /// The all-zero address.
  public static let zero = MACAddress(0, 0, 0, 0, 0, 0)

  /// The octets as an array, in wire order.
  public var octets: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] }

  /// True for group (multicast or broadcast) addresses.
  public var isMulticast: Bool { bytes.0 & 1 == 1 }

  /// True when the locally administered bit is set.
  public var isLocallyAdministered: Bool { bytes.0 & 2 == 2 }

  /// Lower-case colon form, `aa:bb:cc:dd:ee:ff`.
  public var description: String {
    octets.map { byte in
      let s = String(byte, radix: 16)
      return s.count == 1 ? "0" + s : s
    }.joined(separator: ":")
  }

  /// The address as a 48-bit integer, first octet most significant.
  var value48: UInt64 {
    UInt64(bytes.0) << 40 | UInt64(bytes.1) << 32 | UInt64(bytes.2) << 24 | UInt64(bytes.3) << 16
      | UInt64(bytes.4) << 8 | UInt64(bytes.5)
  }

  /// Equal when all six octets are.
  public static func == (l: MACAddress, r: MACAddress) -> Bool { l.value48 == r.value48 }
  /// Hashes the six octets.
  public func hash(into h: inout Hasher) { h.combine(self.value48) }
  /// Numeric order of the 48-bit value (octets compared in wire order).
  public static func < (l: MACAddress, r: MACAddress) -> Bool {
    l.value48 < r.value48
  }
}
