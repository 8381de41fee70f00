import CWeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

extension Netlink {
  /// Creates a link. Fails with EEXIST if one of that name exists.
  ///
  /// - Parameters:
  ///   - name: the interface name (at most 15 bytes).
  ///   - kind: what to create, with its options.
  ///   - mtu: an MTU to set at creation.
  ///   - address: a MAC address to set at creation.
  ///   - masterIndex: a bridge or VRF to enslave the link to.
  public func createLink(
    name: String, kind: LinkKind, mtu: UInt32? = nil, address: MACAddress? = nil,
    masterIndex: Int32? = nil
  ) throws(NetlinkError) {
    guard name.utf8.count < 16, !name.isEmpty else {
      throw NetlinkError(
        operation: "create link", object: name, errno: EINVAL, kernelMessage: "name must be 1-15 bytes")
    }
    var body = Self.interfaceInfo(index: 0)
    body.attribute(NL.u16(IFLA_IFNAME), string: name)
    if let mtu { body.attribute(NL.u16(IFLA_MTU), mtu) }
    if let address { body.attribute(NL.u16(IFLA_ADDRESS), address.octets) }
    if let masterIndex { body.attribute(NL.u16(IFLA_MASTER), UInt32(bitPattern: masterIndex)) }
    var peerNamespaceFD: Int32?
    defer { if let fd = peerNamespaceFD { close(fd) } }
    if case .veth(_, let ns?) = kind {
      do {
        peerNamespaceFD = try ns.openDescriptor()
      } catch {
        throw NetlinkError(
          operation: "create link", object: name, errno: error.errno,
          kernelMessage: "peer namespace \(ns.name)")
      }
    }
    body.nested(NL.u16(IFLA_LINKINFO)) { info in
      info.attribute(NL.u16(IFLA_INFO_KIND), string: kind.kernelName)
      switch kind {
      case .veth(let peer, _):
        info.nested(NL.u16(IFLA_INFO_DATA)) { data in
          data.nested(NL.u16(VETH_INFO_PEER)) { p in
            p.append(Self.interfaceInfo(index: 0).bytes)
            p.attribute(NL.u16(IFLA_IFNAME), string: peer)
            if let mtu { p.attribute(NL.u16(IFLA_MTU), mtu) }
            if let fd = peerNamespaceFD { p.attribute(NL.u16(IFLA_NET_NS_FD), UInt32(bitPattern: fd)) }
          }
        }
      case .vxlan(let o):
        info.nested(NL.u16(IFLA_INFO_DATA)) { data in
          data.attribute(NL.u16(IFLA_VXLAN_ID), o.vni)
          data.attribute(NL.u16(IFLA_VXLAN_PORT), bigEndian: o.port)
          data.attribute(NL.u16(IFLA_VXLAN_LEARNING), UInt8(o.learning ? 1 : 0))
          switch o.local {
          case .v4(let a)?: data.attribute(NL.u16(IFLA_VXLAN_LOCAL), a.octets)
          case .v6(let a)?: data.attribute(NL.u16(IFLA_VXLAN_LOCAL6), a.octets)
          case nil: break
          }
          if let dev = o.underlayIndex { data.attribute(NL.u16(IFLA_VXLAN_LINK), UInt32(bitPattern: dev)) }
          data.attribute(NL.u16(IFLA_VXLAN_UDP_CSUM), UInt8(o.udpChecksum ? 1 : 0))
          data.attribute(NL.u16(IFLA_VXLAN_UDP_ZERO_CSUM6_TX), UInt8(o.zeroChecksum6Tx ? 1 : 0))
          data.attribute(NL.u16(IFLA_VXLAN_UDP_ZERO_CSUM6_RX), UInt8(o.zeroChecksum6Rx ? 1 : 0))
          if let r = o.sourcePortRange {
            data.attribute(
              NL.u16(IFLA_VXLAN_PORT_RANGE),
              [UInt8(r.low >> 8), UInt8(r.low & 0xff), UInt8(r.high >> 8), UInt8(r.high & 0xff)])
          }
        }
      case .vrf(let table):
        info.nested(NL.u16(IFLA_INFO_DATA)) { data in data.attribute(NL.u16(IFLA_VRF_TABLE), table) }
      case .bridge, .dummy, .other:
        break
      }
    }
    try self.socket.request(
      NL.newLink, flags: RequestFlags.createExclusive, body: body,
      operation: "create \(kind.kernelName) link",
      object: name)
  }

  /// Deletes a link by name (a veth's peer goes with it).
  public func deleteLink(name: String) throws(NetlinkError) {
    var body = Self.interfaceInfo(index: 0)
    body.attribute(NL.u16(IFLA_IFNAME), string: name)
    try self.socket.request(NL.delLink, flags: 0, body: body, operation: "delete link", object: name)
  }

  /// The link called `name`, or `nil` when there is none.
  public func link(named name: String) throws(NetlinkError) -> Link? {
    var body = Self.interfaceInfo(index: 0)
    body.attribute(NL.u16(IFLA_IFNAME), string: name)
    do {
      let reply = try self.socket.get(NL.getLink, body: body, operation: "get link", object: name)
      return Self.parseLink(reply.body)
    } catch  where error.errno == ENODEV {
      return nil
    }
  }

  /// Every link in the namespace.
  public func links() throws(NetlinkError) -> [Link] {
    let replies = try self.socket.dump(
      NL.getLink, body: Self.interfaceInfo(index: 0), operation: "list links")
    return replies.compactMap { $0.type == NL.newLink ? Self.parseLink($0.body) : nil }
  }

  /// Sets a link administratively up.
  public func setUp(_ name: String) throws(NetlinkError) {
    try self.change(
      name, operation: "set up", flags: UInt32(IFF_UP.rawValue), change: UInt32(IFF_UP.rawValue))
  }

  /// Sets a link administratively down.
  public func setDown(_ name: String) throws(NetlinkError) {
    try self.change(name, operation: "set down", flags: 0, change: UInt32(IFF_UP.rawValue))
  }

  /// Sets a link's MTU.
  public func setMTU(_ name: String, _ mtu: UInt32) throws(NetlinkError) {
    try self.change(name, operation: "set mtu \(mtu) on") { $0.attribute(NL.u16(IFLA_MTU), mtu) }
  }

  /// Sets a link's MAC address.
  public func setAddress(_ name: String, _ mac: MACAddress) throws(NetlinkError) {
    try self.change(name, operation: "set address \(mac) on") {
      $0.attribute(NL.u16(IFLA_ADDRESS), mac.octets)
    }
  }

  /// Enslaves a link to a bridge or VRF by the master's name, or frees it when `master` is nil.
  public func setMaster(_ name: String, master: String?) throws(NetlinkError) {
    var index: Int32 = 0
    if let master {
      guard let m = try self.link(named: master) else {
        throw NetlinkError(
          operation: "set master of", object: name, errno: ENODEV, kernelMessage: "no link \(master)")
      }
      index = m.index
    }
    try self.change(name, operation: "set master \(master ?? "none") of") {
      $0.attribute(NL.u16(IFLA_MASTER), UInt32(bitPattern: index))
    }
  }

  /// Moves a link into another network namespace (it disappears from this one).
  public func moveToNamespace(_ name: String, _ namespace: NetworkNamespace) throws(NetlinkError) {
    let fd: Int32
    do {
      fd = try namespace.openDescriptor()
    } catch {
      throw NetlinkError(
        operation: "move link", object: name, errno: error.errno, kernelMessage: "namespace \(namespace.name)"
      )
    }
    defer { close(fd) }
    try self.change(name, operation: "move to namespace \(namespace.name)") {
      $0.attribute(NL.u16(IFLA_NET_NS_FD), UInt32(bitPattern: fd))
    }
  }

  private func change(
    _ name: String, operation: String, flags: UInt32 = 0, change: UInt32 = 0,
    attributes: (inout NetlinkEncoder) -> Void = { _ in }
  ) throws(NetlinkError) {
    var body = Self.interfaceInfo(index: 0, flags: flags, change: change)
    body.attribute(NL.u16(IFLA_IFNAME), string: name)
    attributes(&body)
    try self.socket.request(NL.newLink, flags: 0, body: body, operation: operation, object: name)
  }

  /// struct ifinfomsg.
  static func interfaceInfo(index: Int32, flags: UInt32 = 0, change: UInt32 = 0) -> NetlinkEncoder {
    var e = NetlinkEncoder()
    e.append(Family.unspec)
    e.append(UInt8(0))
    e.append(UInt16(0))
    e.append(index)
    e.append(flags)
    e.append(change)
    return e
  }

  static func parseLink(_ body: ArraySlice<UInt8>) -> Link? {
    guard let index = body.readInteger(at: 4, as: Int32.self),
      let flags = body.readInteger(at: 8, as: UInt32.self), body.count >= 16
    else { return nil }
    let attrs = NetlinkAttribute.parse(body.dropFirst(16))
    var kind: LinkKind?
    if let info = attrs.first(NL.u16(IFLA_LINKINFO))?.nested {
      let name = info.first(NL.u16(IFLA_INFO_KIND))?.string ?? ""
      let data = info.first(NL.u16(IFLA_INFO_DATA))?.nested ?? []
      kind = Self.parseKind(name, data)
    }
    return Link(
      index: index,
      name: attrs.first(NL.u16(IFLA_IFNAME))?.string ?? "",
      kind: kind,
      mtu: attrs.first(NL.u16(IFLA_MTU))?.integer(UInt32.self) ?? 0,
      address: attrs.first(NL.u16(IFLA_ADDRESS)).flatMap { MACAddress(octets: $0.data) },
      masterIndex: attrs.first(NL.u16(IFLA_MASTER))?.integer(Int32.self),
      isUp: flags & UInt32(IFF_UP.rawValue) != 0,
      operState: attrs.first(NL.u16(IFLA_OPERSTATE))?.integer(UInt8.self) ?? 0)
  }

  private static func parseKind(_ name: String, _ data: [NetlinkAttribute]) -> LinkKind {
    switch name {
    case "bridge": return .bridge
    case "dummy": return .dummy
    case "veth": return .veth(peer: "")
    case "vrf": return .vrf(table: data.first(NL.u16(IFLA_VRF_TABLE))?.integer(UInt32.self) ?? 0)
    case "vxlan":
      var local: IPAddress?
      if let a = data.first(NL.u16(IFLA_VXLAN_LOCAL)) {
        local = Self.ipAddress(family: Family.inet, a.data)
      } else if let a = data.first(NL.u16(IFLA_VXLAN_LOCAL6)) {
        local = Self.ipAddress(family: Family.inet6, a.data)
      }
      var range: (UInt16, UInt16)?
      if let r = data.first(NL.u16(IFLA_VXLAN_PORT_RANGE)), r.data.count == 4 {
        let d = Array(r.data)
        range = (UInt16(d[0]) << 8 | UInt16(d[1]), UInt16(d[2]) << 8 | UInt16(d[3]))
      }
      func bool(_ t: UInt16) -> Bool { (data.first(t)?.integer(UInt8.self) ?? 0) != 0 }
      return .vxlan(
        VXLANOptions(
          vni: data.first(NL.u16(IFLA_VXLAN_ID))?.integer(UInt32.self) ?? 0,
          port: data.first(NL.u16(IFLA_VXLAN_PORT))?.bigEndianUInt16 ?? 0,
          local: local,
          underlayIndex: data.first(NL.u16(IFLA_VXLAN_LINK))?.integer(Int32.self),
          learning: bool(NL.u16(IFLA_VXLAN_LEARNING)),
          udpChecksum: bool(NL.u16(IFLA_VXLAN_UDP_CSUM)),
          zeroChecksum6Tx: bool(NL.u16(IFLA_VXLAN_UDP_ZERO_CSUM6_TX)),
          zeroChecksum6Rx: bool(NL.u16(IFLA_VXLAN_UDP_ZERO_CSUM6_RX)),
          sourcePortRange: range))
    default:
      return .other(name)
    }
  }
}
