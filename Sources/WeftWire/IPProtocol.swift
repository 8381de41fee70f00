/// An IP protocol number (IPv4 Protocol field, IPv6 Next Header field).
public struct IPProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  /// The value as carried on the wire.
  public var rawValue: UInt8

  /// Wraps a raw protocol number.
  public init(rawValue: UInt8) { self.rawValue = rawValue }

  /// Wraps a raw protocol number.
  public init(_ rawValue: UInt8) { self.rawValue = rawValue }

  /// IPv6 Hop-by-Hop Options extension header, 0.
  public static let hopByHop = IPProtocol(0)
  /// ICMP for IPv4, 1.
  public static let icmp = IPProtocol(1)
  /// IP-in-IP (IPv4 encapsulation), 4.
  public static let ipip = IPProtocol(4)
  /// TCP, 6.
  public static let tcp = IPProtocol(6)
  /// UDP, 17.
  public static let udp = IPProtocol(17)
  /// IPv6 encapsulation, 41.
  public static let ipv6 = IPProtocol(41)
  /// IPv6 Routing extension header, 43.
  public static let ipv6Routing = IPProtocol(43)
  /// IPv6 Fragment extension header, 44.
  public static let ipv6Fragment = IPProtocol(44)
  /// GRE, 47.
  public static let gre = IPProtocol(47)
  /// IPsec Encapsulating Security Payload, 50.
  public static let esp = IPProtocol(50)
  /// IPsec Authentication Header, 51.
  public static let ah = IPProtocol(51)
  /// ICMP for IPv6, 58.
  public static let icmpv6 = IPProtocol(58)
  /// IPv6 "No Next Header", 59.
  public static let noNextHeader = IPProtocol(59)
  /// IPv6 Destination Options extension header, 60.
  public static let ipv6DestinationOptions = IPProtocol(60)
  /// SCTP, 132.
  public static let sctp = IPProtocol(132)

  /// The decimal protocol number.
  public var description: String { String(self.rawValue) }
}
