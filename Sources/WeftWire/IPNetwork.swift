/// An address with a prefix length, as in `10.0.0.1/24`: an interface address or a route prefix.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
  /// The address (host bits may be set, as for an interface address).
  public var address: IPAddress
  /// The prefix length in bits.
  public var length: UInt8

  /// Creates a prefix; fails when `length` exceeds the family's width.
  public init?(_ address: IPAddress, _ length: UInt8) {
    guard length <= (address.isV4 ? 32 : 128) else { return nil }
    self.address = address
    self.length = length
  }

  /// Parses `ADDRESS/LEN`; a bare address gets the full width.
  public init?(_ text: some StringProtocol) {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count <= 2, let a = IPAddress(parts[0]) else { return nil }
    let width: UInt8 = a.isV4 ? 32 : 128
    var len = width
    if parts.count == 2 {
      guard parts[1].allSatisfy(\.isNumber), let l = UInt8(parts[1]), l <= width else { return nil }
      len = l
    }
    self.init(a, len)
  }

  /// The prefix with host bits cleared.
  public var network: IPPrefix {
    switch address {
    case .v4(let a):
      let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(length))
      return IPPrefix(.v4(IPv4Address(a.value & mask)), length)!
    case .v6(let a):
      let l = Int(length)
      let hm: UInt64 = l >= 64 ? ~0 : (l == 0 ? 0 : ~UInt64(0) << UInt64(64 - l))
      let lm: UInt64 = l <= 64 ? 0 : (l >= 128 ? ~0 : ~UInt64(0) << UInt64(128 - l))
      return IPPrefix(.v6(IPv6Address(high: a.high & hm, low: a.low & lm)), length)!
    }
  }

  /// True when `other` lies inside this prefix.
  public func contains(_ other: IPAddress) -> Bool {
    guard let p = IPPrefix(other, length) else { return false }
    return p.network.address == self.network.address
  }

  /// `ADDRESS/LEN`.
  public var description: String { "\(address)/\(length)" }
}
