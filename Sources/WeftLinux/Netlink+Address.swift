import CWeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// An address assigned to an interface.
public struct InterfaceAddress: Sendable, Hashable {
  /// Index of the interface holding it.
  public var interfaceIndex: Int32
  /// The address with its prefix length.
  public var prefix: IPPrefix
}

extension Netlink {
  /// Adds an address to a link, like `ip addr add PREFIX dev NAME`.
  public func addAddress(_ prefix: IPPrefix, to name: String) throws(NetlinkError) {
    try self.changeAddress(
      prefix, on: name, type: NL.newAddr, flags: RequestFlags.createExclusive, verb: "add")
  }

  /// Removes an address from a link.
  public func deleteAddress(_ prefix: IPPrefix, from name: String) throws(NetlinkError) {
    try self.changeAddress(prefix, on: name, type: NL.delAddr, flags: 0, verb: "delete")
  }

  /// Every address in the namespace, or only those of one link.
  public func addresses(of name: String? = nil) throws(NetlinkError) -> [InterfaceAddress] {
    var filter: Int32?
    if let name {
      guard let link = try self.link(named: name) else {
        throw NetlinkError(operation: "list addresses of", object: name, errno: ENODEV)
      }
      filter = link.index
    }
    let replies = try self.socket.dump(
      NL.getAddr, body: Self.addressInfo(family: Family.unspec, prefixLength: 0, index: filter ?? 0),
      operation: "list addresses")
    return replies.compactMap { m -> InterfaceAddress? in
      let b = m.body
      guard m.type == NL.newAddr, b.count >= 8, let index = b.readInteger(at: 4, as: Int32.self) else {
        return nil
      }
      if let filter, index != filter { return nil }
      let family = b[b.startIndex]
      let length = b[b.startIndex + 1]
      let attrs = NetlinkAttribute.parse(b.dropFirst(8))
      guard let raw = attrs.first(NL.u16(IFA_LOCAL)) ?? attrs.first(NL.u16(IFA_ADDRESS)),
        let address = Self.ipAddress(family: family, raw.data), let prefix = IPPrefix(address, length)
      else { return nil }
      return InterfaceAddress(interfaceIndex: index, prefix: prefix)
    }
  }

  private func changeAddress(
    _ prefix: IPPrefix, on name: String, type: UInt16, flags: Int32, verb: String
  ) throws(NetlinkError) {
    guard let link = try self.link(named: name) else {
      throw NetlinkError(operation: "\(verb) address \(prefix) on", object: name, errno: ENODEV)
    }
    var body = Self.addressInfo(
      family: prefix.address.isV4 ? Family.inet : Family.inet6, prefixLength: prefix.length, index: link.index
    )
    body.attribute(NL.u16(IFA_LOCAL), prefix.address.octets)
    body.attribute(NL.u16(IFA_ADDRESS), prefix.address.octets)
    try self.socket.request(
      type, flags: flags, body: body, operation: "\(verb) address \(prefix) on", object: name)
  }

  /// struct ifaddrmsg.
  private static func addressInfo(family: UInt8, prefixLength: UInt8, index: Int32) -> NetlinkEncoder {
    var e = NetlinkEncoder()
    e.append(family)
    e.append(prefixLength)
    e.append(UInt8(0))  // flags
    e.append(UInt8(0))  // scope: universe
    e.append(index)
    return e
  }

  /// An address from a netlink attribute of the given family.
  static func ipAddress(family: UInt8, _ data: ArraySlice<UInt8>) -> IPAddress? {
    switch family {
    case Family.inet where data.count == 4:
      let d = Array(data)
      return .v4(IPv4Address(d[0], d[1], d[2], d[3]))
    case Family.inet6 where data.count == 16:
      return IPv6Address(octets: data).map { .v6($0) }
    default:
      return nil
    }
  }
}
