import WeftModel
import WeftWire

/// Picks host subnets out of a network's range and VNIs out of the 24-bit space. Pure: callers
/// pass what is taken and store the answer.
public enum Allocators {
  /// The first free `/hostLength` subnet of `range` not in `taken`, or nil when the range is full.
  /// The subnet whose first address is the range's own network address is skipped (it would make
  /// the gateway the network address), so leases start at the second subnet.
  public static func subnet(in range: IPPrefix, hostLength: Int, taken: Set<IPPrefix>) -> IPPrefix? {
    guard case .v4(let base) = range.network.address, hostLength > Int(range.length), hostLength <= 30 else {
      return nil
    }
    let count = UInt64(1) << UInt64(hostLength - Int(range.length))
    let size = UInt64(1) << UInt64(32 - hostLength)
    let takenNetworks = Set(taken.map(\.network))
    for i in 1..<count {
      let address = IPv4Address(UInt32(truncatingIfNeeded: UInt64(base.value) + i * size))
      let candidate = IPPrefix(.v4(address), UInt8(hostLength))!
      if !takenNetworks.contains(candidate) { return candidate }
    }
    return nil
  }

  /// The lowest address of `range` after its network address that is not in `taken` (service
  /// virtual IPs), or nil when all are taken.
  public static func vip(in range: IPPrefix, taken: Set<IPAddress>) -> IPAddress? {
    guard case .v4(let base) = range.network.address, range.length <= 31 else { return nil }
    let count = UInt32(1) << (32 - UInt32(range.length))
    for i in 1..<(count - 1) {
      let candidate = IPAddress.v4(IPv4Address(base.value + i))
      if !taken.contains(candidate) { return candidate }
    }
    return nil
  }

  /// The lowest VNI from 1 not in `taken`.
  public static func vni(taken: Set<Int>) -> Int? {
    (1...NetworkSpec.maxVNI).first { !taken.contains($0) }
  }

  /// The VTEP MAC of a host on a network: locally administered, derived from the host's subnet
  /// (unique within the network, stable while the lease is), `02:57:` then the subnet's four octets.
  public static func vtepMAC(for subnet: IPPrefix) -> MACAddress {
    let o = subnet.network.address.octets
    return MACAddress(0x02, 0x57, o[0], o[1], o[2], o[3])
  }
}
