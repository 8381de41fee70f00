/// An Ethernet II EtherType: the 16-bit protocol identifier after the MAC addresses (or VLAN tags).
public struct EtherType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  /// The value as carried on the wire.
  public var rawValue: UInt16

  /// Wraps a raw EtherType value.
  public init(rawValue: UInt16) { self.rawValue = rawValue }

  /// Wraps a raw EtherType value.
  public init(_ rawValue: UInt16) { self.rawValue = rawValue }

  /// IPv4, `0x0800`.
  public static let ipv4 = EtherType(0x0800)
  /// ARP, `0x0806`.
  public static let arp = EtherType(0x0806)
  /// IEEE 802.1Q customer VLAN tag, `0x8100`.
  public static let vlan = EtherType(0x8100)
  /// IEEE 802.1ad service VLAN tag (QinQ outer tag), `0x88A8`.
  public static let qinq = EtherType(0x88A8)
  /// Pre-standard QinQ outer tag still emitted by some switches, `0x9100`.
  public static let qinqLegacy = EtherType(0x9100)
  /// IPv6, `0x86DD`.
  public static let ipv6 = EtherType(0x86DD)
  /// Link Layer Discovery Protocol, `0x88CC`.
  public static let lldp = EtherType(0x88CC)

  /// True for the tag protocol identifiers that introduce a VLAN tag rather than a payload.
  public var isVLANTag: Bool { self == .vlan || self == .qinq || self == .qinqLegacy }

  /// `0x0800`-style hexadecimal form.
  public var description: String { hex16(self.rawValue) }
}

/// `0x`-prefixed, zero-padded, four-digit lower-case hexadecimal.
func hex16(_ v: UInt16) -> String {
  let s = String(v, radix: 16)
  return "0x" + String(repeating: "0", count: max(0, 4 - s.count)) + s
}
