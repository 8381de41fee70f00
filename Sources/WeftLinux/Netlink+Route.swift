import CWeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// A route, as Weft programs it: a destination prefix via an optional gateway out of a device.
public struct Route: Sendable, Hashable {
  /// The destination prefix.
  public var destination: IPPrefix
  /// The next hop, if any (directly connected routes have none).
  public var gateway: IPAddress?
  /// The output interface index.
  public var outputIndex: Int32?
  /// The routing table (254 is main).
  public var table: UInt32
  /// The route's priority (metric); lower wins.
  public var metric: UInt32?
  /// The gateway is on-link even though no prefix of the device covers it (RTNH_F_ONLINK).
  public var onLink: Bool
  /// The protocol that installed it (RTPROT_*), so each owner can find its own routes.
  public var proto: UInt8

  /// The protocol number Weft marks its routes with.
  public static let weftProtocol: UInt8 = 0x57

  /// The main table.
  public static let mainTable: UInt32 = 254

  /// Creates a route; by default in the main table, tagged as Weft's.
  public init(
    destination: IPPrefix, gateway: IPAddress? = nil, outputIndex: Int32? = nil,
    table: UInt32 = Route.mainTable,
    metric: UInt32? = nil, onLink: Bool = false, proto: UInt8 = Route.weftProtocol
  ) {
    self.destination = destination.network
    self.gateway = gateway
    self.outputIndex = outputIndex
    self.table = table
    self.metric = metric
    self.onLink = onLink
    self.proto = proto
  }
}

extension Netlink {
  /// Adds a route, failing if an identical one exists.
  public func addRoute(_ route: Route) throws(NetlinkError) {
    try self.socket.request(
      NL.newRoute, flags: RequestFlags.createExclusive, body: Self.routeBody(route), operation: "add route",
      object: route.destination.description)
  }

  /// Adds or replaces a route (idempotent).
  public func replaceRoute(_ route: Route) throws(NetlinkError) {
    try self.socket.request(
      NL.newRoute, flags: RequestFlags.createOrReplace, body: Self.routeBody(route),
      operation: "replace route",
      object: route.destination.description)
  }

  /// Deletes a route.
  public func deleteRoute(_ route: Route) throws(NetlinkError) {
    try self.socket.request(
      NL.delRoute, flags: 0, body: Self.routeBody(route), operation: "delete route",
      object: route.destination.description)
  }

  /// The unicast routes of one table (main by default) for one family.
  public func routes(table: UInt32 = Route.mainTable, ipv6: Bool = false) throws(NetlinkError) -> [Route] {
    var filter = NetlinkEncoder()
    filter.append(ipv6 ? Family.inet6 : Family.inet)
    filter.append([0, 0, 0, 0, 0, 0, 0])
    filter.append(UInt32(0))
    let replies = try self.socket.dump(NL.getRoute, body: filter, operation: "list routes")
    return replies.compactMap { m -> Route? in
      let b = m.body
      guard m.type == NL.newRoute, b.count >= 12 else { return nil }
      let family = b[b.startIndex]
      let dstLength = b[b.startIndex + 1]
      let rtType = b[b.startIndex + 7]
      let flags = b.readInteger(at: 8, as: UInt32.self) ?? 0
      guard rtType == UInt8(RTN_UNICAST) else { return nil }
      let attrs = NetlinkAttribute.parse(b.dropFirst(12))
      let t = attrs.first(NL.u16(RTA_TABLE))?.integer(UInt32.self) ?? UInt32(b[b.startIndex + 4])
      guard t == table else { return nil }
      let any: IPAddress = family == Family.inet ? .v4(.any) : .v6(.any)
      let dst = attrs.first(NL.u16(RTA_DST)).flatMap { Self.ipAddress(family: family, $0.data) } ?? any
      guard let prefix = IPPrefix(dst, dstLength) else { return nil }
      return Route(
        destination: prefix,
        gateway: attrs.first(NL.u16(RTA_GATEWAY)).flatMap { Self.ipAddress(family: family, $0.data) },
        outputIndex: attrs.first(NL.u16(RTA_OIF))?.integer(Int32.self),
        table: t,
        metric: attrs.first(NL.u16(RTA_PRIORITY))?.integer(UInt32.self),
        onLink: flags & UInt32(RTNH_F_ONLINK) != 0,
        proto: b[b.startIndex + 5])
    }
  }

  /// struct rtmsg and attributes.
  private static func routeBody(_ r: Route) -> NetlinkEncoder {
    var e = NetlinkEncoder()
    e.append(r.destination.address.isV4 ? Family.inet : Family.inet6)
    e.append(r.destination.length)
    e.append(UInt8(0))  // src_len
    e.append(UInt8(0))  // tos
    e.append(UInt8(r.table < 256 ? r.table : RT_TABLE_UNSPEC.rawValue))
    e.append(r.proto)
    // A route with a gateway reaches beyond the link; one without is link scoped.
    e.append(UInt8(r.gateway == nil ? RT_SCOPE_LINK.rawValue : RT_SCOPE_UNIVERSE.rawValue))
    e.append(UInt8(RTN_UNICAST))
    e.append(r.onLink ? UInt32(RTNH_F_ONLINK) : UInt32(0))
    e.attribute(NL.u16(RTA_DST), r.destination.address.octets)
    e.attribute(NL.u16(RTA_TABLE), r.table)
    if let g = r.gateway { e.attribute(NL.u16(RTA_GATEWAY), g.octets) }
    if let o = r.outputIndex { e.attribute(NL.u16(RTA_OIF), UInt32(bitPattern: o)) }
    if let m = r.metric { e.attribute(NL.u16(RTA_PRIORITY), m) }
    return e
  }
}
