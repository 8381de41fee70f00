import CWeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// A neighbour (ARP or NDP) entry: an IP address's MAC on a link.
public struct Neighbor: Sendable, Hashable {
  /// The link's index.
  public var interfaceIndex: Int32
  /// The neighbour's IP address.
  public var address: IPAddress
  /// Its MAC address.
  public var mac: MACAddress?
  /// The NUD_* state bits (NUD_PERMANENT is 0x80).
  public var state: UInt16

  /// True for entries that never expire.
  public var isPermanent: Bool { self.state & UInt16(NUD_PERMANENT) != 0 }
}

/// A bridge forwarding-database entry; on a VXLAN device it says which remote VTEP a MAC sits behind.
public struct FDBEntry: Sendable, Hashable {
  /// The link's index (the VXLAN device or a bridge port).
  public var interfaceIndex: Int32
  /// The MAC address.
  public var mac: MACAddress
  /// The remote VTEP's underlay address, for VXLAN entries.
  public var destination: IPAddress?
  /// The NUD_* state bits.
  public var state: UInt16
}

extension Netlink {
  /// Installs (or replaces) a permanent neighbour entry, like
  /// `ip neigh replace ADDR lladdr MAC dev NAME nud permanent`.
  public func replaceNeighbor(_ address: IPAddress, mac: MACAddress, on name: String) throws(NetlinkError) {
    let index = try self.index(of: name, for: "set neighbour \(address) on")
    var body = Self.neighborInfo(
      family: address.isV4 ? Family.inet : Family.inet6, index: index,
      state: UInt16(NUD_PERMANENT), flags: 0)
    body.attribute(NL.u16(NDA_DST), address.octets)
    body.attribute(NL.u16(NDA_LLADDR), mac.octets)
    try self.socket.request(
      NL.newNeigh, flags: RequestFlags.createOrReplace, body: body, operation: "set neighbour \(address) on",
      object: name)
  }

  /// Deletes a neighbour entry.
  public func deleteNeighbor(_ address: IPAddress, on name: String) throws(NetlinkError) {
    let index = try self.index(of: name, for: "delete neighbour \(address) on")
    var body = Self.neighborInfo(
      family: address.isV4 ? Family.inet : Family.inet6, index: index, state: 0, flags: 0)
    body.attribute(NL.u16(NDA_DST), address.octets)
    try self.socket.request(
      NL.delNeigh, flags: 0, body: body, operation: "delete neighbour \(address) on", object: name)
  }

  /// Neighbour entries of one family, optionally of one link.
  public func neighbors(of name: String? = nil, ipv6: Bool = false) throws(NetlinkError) -> [Neighbor] {
    let filter = try name.map { n throws(NetlinkError) in try self.index(of: n, for: "list neighbours of") }
    let family = ipv6 ? Family.inet6 : Family.inet
    let replies = try self.socket.dump(
      NL.getNeigh, body: Self.neighborInfo(family: family, index: 0, state: 0, flags: 0),
      operation: "list neighbours")
    return replies.compactMap { m -> Neighbor? in
      guard m.type == NL.newNeigh, let (index, state, attrs) = Self.parseNeighbor(m.body) else { return nil }
      if let filter, index != filter { return nil }
      guard let dst = attrs.first(NL.u16(NDA_DST)).flatMap({ Self.ipAddress(family: family, $0.data) }) else {
        return nil
      }
      return Neighbor(
        interfaceIndex: index, address: dst,
        mac: attrs.first(NL.u16(NDA_LLADDR)).flatMap { MACAddress(octets: $0.data) }, state: state)
    }
  }

  /// Appends an FDB entry pointing `mac` at a remote VTEP, like
  /// `bridge fdb append MAC dev NAME dst ADDR self permanent`.
  public func appendFDB(_ mac: MACAddress, destination: IPAddress, on name: String) throws(NetlinkError) {
    try self.changeFDB(
      mac, destination: destination, on: name, type: NL.newNeigh, flags: RequestFlags.append, verb: "append")
  }

  /// Deletes an FDB entry (the one with `destination` when given).
  public func deleteFDB(_ mac: MACAddress, destination: IPAddress? = nil, on name: String)
    throws(NetlinkError)
  {
    try self.changeFDB(mac, destination: destination, on: name, type: NL.delNeigh, flags: 0, verb: "delete")
  }

  /// The FDB entries of one link.
  public func fdb(of name: String) throws(NetlinkError) -> [FDBEntry] {
    let index = try self.index(of: name, for: "list fdb of")
    var filter = Self.neighborInfo(family: Family.bridge, index: index, state: 0, flags: 0)
    filter.attribute(NL.u16(NDA_IFINDEX), UInt32(bitPattern: index))
    let replies = try self.socket.dump(NL.getNeigh, body: filter, operation: "list fdb of", object: name)
    return replies.compactMap { m -> FDBEntry? in
      guard m.type == NL.newNeigh, let (i, state, attrs) = Self.parseNeighbor(m.body), i == index,
        let mac = attrs.first(NL.u16(NDA_LLADDR)).flatMap({ MACAddress(octets: $0.data) })
      else { return nil }
      let dst = attrs.first(NL.u16(NDA_DST)).flatMap {
        Self.ipAddress(family: $0.data.count == 4 ? Family.inet : Family.inet6, $0.data)
      }
      return FDBEntry(interfaceIndex: i, mac: mac, destination: dst, state: state)
    }
  }

  private func changeFDB(
    _ mac: MACAddress, destination: IPAddress?, on name: String, type: UInt16, flags: Int32, verb: String
  ) throws(NetlinkError) {
    let operation = "\(verb) fdb \(mac)\(destination.map { " dst \($0)" } ?? "") on"
    let index = try self.index(of: name, for: operation)
    var body = Self.neighborInfo(
      family: Family.bridge, index: index, state: UInt16(NUD_PERMANENT) | UInt16(NUD_NOARP),
      flags: UInt8(NTF_SELF))
    body.attribute(NL.u16(NDA_LLADDR), mac.octets)
    if let destination { body.attribute(NL.u16(NDA_DST), destination.octets) }
    try self.socket.request(type, flags: flags, body: body, operation: operation, object: name)
  }

  /// The index of a link, or an error naming the operation when it is missing.
  public func index(of name: String, for operation: String) throws(NetlinkError) -> Int32 {
    guard let link = try self.link(named: name) else {
      throw NetlinkError(operation: operation, object: name, errno: ENODEV)
    }
    return link.index
  }

  /// struct ndmsg.
  private static func neighborInfo(family: UInt8, index: Int32, state: UInt16, flags: UInt8) -> NetlinkEncoder
  {
    var e = NetlinkEncoder()
    e.append(family)
    e.append(UInt8(0))
    e.append(UInt16(0))
    e.append(index)
    e.append(state)
    e.append(flags)
    e.append(UInt8(0))  // type
    return e
  }

  private static func parseNeighbor(_ b: ArraySlice<UInt8>) -> (Int32, UInt16, [NetlinkAttribute])? {
    guard b.count >= 12, let index = b.readInteger(at: 4, as: Int32.self),
      let state = b.readInteger(at: 8, as: UInt16.self)
    else { return nil }
    return (index, state, NetlinkAttribute.parse(b.dropFirst(12)))
  }
}
