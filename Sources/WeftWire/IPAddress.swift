/// An IPv4 address held as a host-order 32-bit integer.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// The address as a host-order integer (`10.0.0.1` is `0x0A000001`).
  public var value: UInt32

  /// Creates an address from a host-order integer.
  public init(_ value: UInt32) { self.value = value }

  /// Creates an address from four octets in wire order.
  public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
    self.value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
  }

  /// Parses dotted-quad text; `nil` for anything else.
  public init?(_ text: some StringProtocol) {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var v: UInt32 = 0
    for p in parts {
      guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let o = UInt8(p) else { return nil }
      v = v << 8 | UInt32(o)
    }
    self.value = v
  }

  /// The four octets in wire order.
  public var octets: [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
  }

  /// `0.0.0.0`.
  public static let any = IPv4Address(0)

  /// Dotted-quad form.
  public var description: String { octets.map(String.init).joined(separator: ".") }

  /// Numeric order.
  public static func < (l: IPv4Address, r: IPv4Address) -> Bool { l.value < r.value }
}

/// An IPv6 address held as sixteen octets in wire order.
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// High 64 bits, host order.
  public var high: UInt64
  /// Low 64 bits, host order.
  public var low: UInt64

  /// Creates an address from its two 64-bit halves.
  public init(high: UInt64, low: UInt64) {
    self.high = high
    self.low = low
  }

  /// Creates an address from exactly sixteen octets, or `nil` for any other count.
  public init?<C: Collection>(octets: C) where C.Element == UInt8 {
    guard octets.count == 16 else { return nil }
    var h: UInt64 = 0
    var l: UInt64 = 0
    for (i, o) in octets.enumerated() {
      if i < 8 { h = h << 8 | UInt64(o) } else { l = l << 8 | UInt64(o) }
    }
    self.init(high: h, low: l)
  }

  /// Parses RFC 4291 text (with `::` compression; an embedded dotted quad at the end is accepted).
  public init?(_ text: some StringProtocol) {
    var groups: [UInt16] = []
    var tailGroups: [UInt16] = []
    var sawGap = false
    let s = String(text)
    guard !s.isEmpty, s.allSatisfy(\.isASCII) else { return nil }
    var halves: [String] = [s]
    if let gap = s.firstRange(of: "::") {
      halves = [String(s[..<gap.lowerBound]), String(s[gap.upperBound...])]
      guard !halves[1].contains("::") else { return nil }
    }
    func parse(_ part: String, into out: inout [UInt16]) -> Bool {
      if part.isEmpty { return true }
      let fields = part.split(separator: ":", omittingEmptySubsequences: false)
      for (i, f) in fields.enumerated() {
        if i == fields.count - 1, f.contains(".") {
          guard let v4 = IPv4Address(f) else { return false }
          out.append(UInt16(v4.value >> 16))
          out.append(UInt16(v4.value & 0xffff))
        } else {
          guard !f.isEmpty, f.count <= 4, let v = UInt16(f, radix: 16) else { return false }
          out.append(v)
        }
      }
      return true
    }
    guard parse(halves[0], into: &groups) else { return nil }
    if halves.count == 2 {
      sawGap = true
      guard parse(halves[1], into: &tailGroups) else { return nil }
    }
    let total = groups.count + tailGroups.count
    if sawGap {
      guard total <= 7 else { return nil }
      groups += Array(repeating: 0, count: 8 - total) + tailGroups
    } else {
      guard total == 8 else { return nil }
    }
    var octets: [UInt8] = []
    for g in groups { octets += [UInt8(g >> 8), UInt8(g & 0xff)] }
    self.init(octets: octets)
  }

  /// The sixteen octets in wire order.
  public var octets: [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
      + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
  }

  /// `::`.
  public static let any = IPv6Address(high: 0, low: 0)

  /// RFC 5952 text: lower case, longest run of zero groups compressed.
  public var description: String {
    let o = octets
    let g = (0..<8).map { UInt16(o[2 * $0]) << 8 | UInt16(o[2 * $0 + 1]) }
    var bestStart = -1
    var bestLen = 0
    var i = 0
    while i < 8 {
      if g[i] == 0 {
        var j = i
        while j < 8 && g[j] == 0 { j += 1 }
        if j - i > bestLen && j - i >= 2 {
          bestStart = i
          bestLen = j - i
        }
        i = j
      } else {
        i += 1
      }
    }
    func hex(_ r: Range<Int>) -> String { r.map { String(g[$0], radix: 16) }.joined(separator: ":") }
    if bestStart < 0 { return hex(0..<8) }
    return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
  }

  /// Numeric order.
  public static func < (l: IPv6Address, r: IPv6Address) -> Bool {
    (l.high, l.low) < (r.high, r.low)
  }
}

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
  /// An IPv4 address.
  case v4(IPv4Address)
  /// An IPv6 address.
  case v6(IPv6Address)

  /// Parses either family's text form.
  public init?(_ text: some StringProtocol) {
    if let a = IPv4Address(text) {
      self = .v4(a)
    } else if let a = IPv6Address(text) {
      self = .v6(a)
    } else {
      return nil
    }
  }

  /// The octets in wire order (4 or 16).
  public var octets: [UInt8] {
    switch self {
    case .v4(let a): a.octets
    case .v6(let a): a.octets
    }
  }

  /// True for IPv4.
  public var isV4: Bool { if case .v4 = self { true } else { false } }

  /// The text form.
  public var description: String {
    switch self {
    case .v4(let a): a.description
    case .v6(let a): a.description
    }
  }
}
