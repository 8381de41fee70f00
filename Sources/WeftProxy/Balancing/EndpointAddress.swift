/// The IPv4 address and TCP port of one endpoint of a service, as the balancer sees it.
///
/// The address is stored as a `UInt32` in host order, so `10.0.0.1` is `0x0A00_0001`. The value
/// prints and parses as `a.b.c.d:port`.
public struct EndpointAddress: Hashable, Sendable, Comparable {
  /// The IPv4 address, `a.b.c.d` stored as `a << 24 | b << 16 | c << 8 | d`.
  public var ipv4: UInt32
  /// The TCP port.
  public var port: UInt16

  /// Creates an address from an IPv4 address in host order and a port.
  public init(ipv4: UInt32, port: UInt16) {
    self.ipv4 = ipv4
    self.port = port
  }

  /// Creates an address from the four octets of an IPv4 address and a port.
  public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) {
    self.ipv4 = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    self.port = port
  }

  /// The four octets of the IPv4 address in network order.
  public var octets: (UInt8, UInt8, UInt8, UInt8) {
    (
      UInt8(truncatingIfNeeded: self.ipv4 >> 24), UInt8(truncatingIfNeeded: self.ipv4 >> 16),
      UInt8(truncatingIfNeeded: self.ipv4 >> 8), UInt8(truncatingIfNeeded: self.ipv4)
    )
  }

  /// Orders by IPv4 address, then by port.
  public static func < (lhs: EndpointAddress, rhs: EndpointAddress) -> Bool {
    (lhs.ipv4, lhs.port) < (rhs.ipv4, rhs.port)
  }
}

extension EndpointAddress: LosslessStringConvertible {
  /// The address as `a.b.c.d:port`.
  public var description: String {
    let (a, b, c, d) = self.octets
    return "\(a).\(b).\(c).\(d):\(self.port)"
  }

  /// Parses `a.b.c.d:port`; returns `nil` for anything else (no leading zeros, no IPv6).
  public init?(_ description: String) {
    guard let colon = description.lastIndex(of: ":"),
      let port = Self.decimal(description[description.index(after: colon)...], max: 65_535)
    else { return nil }
    let parts = description[..<colon].split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var ipv4: UInt32 = 0
    for part in parts {
      guard let octet = Self.decimal(part, max: 255) else { return nil }
      ipv4 = ipv4 << 8 | UInt32(octet)
    }
    self.init(ipv4: ipv4, port: UInt16(port))
  }

  /// Parses a plain decimal number of at most `max`, rejecting signs and leading zeros.
  private static func decimal(_ text: Substring, max: Int) -> Int? {
    guard !text.isEmpty, text.count <= 5, text == "0" || text.first != "0" else { return nil }
    var value = 0
    for byte in text.utf8 {
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      value = value * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return value <= max ? value : nil
  }
}
