import WeftLinux
import WeftWire

extension Netlink {
  /// Makes the IPv4 addresses of `name` exactly `wanted`.
  func ensureAddresses(on name: String, _ wanted: [IPPrefix], report: inout ReconcileReport) throws {
    let have = Set(try self.addresses(of: name).map(\.prefix).filter { $0.address.isV4 })
    for p in Set(wanted).subtracting(have) {
      try self.addAddress(p, to: name)
      report.changes.append("add address \(p) to \(name)")
    }
    for p in have.subtracting(wanted) {
      try self.deleteAddress(p, from: name)
      report.changes.append("delete address \(p) from \(name)")
    }
  }

  /// Makes link `name` have `mtu`, `mac` (when given) and be up.
  func ensureLink(_ name: String, mtu: UInt32, mac: MACAddress? = nil, report: inout ReconcileReport) throws {
    guard let link = try self.link(named: name) else { return }
    if link.mtu != mtu {
      try self.setMTU(name, mtu)
      report.changes.append("set mtu \(mtu) on \(name)")
    }
    if let mac, link.address != mac {
      try self.setAddress(name, mac)
      report.changes.append("set address \(mac) on \(name)")
    }
    if !link.isUp {
      try self.setUp(name)
      report.changes.append("set up \(name)")
    }
  }

  /// The network's bridge: created when missing, its MTU, up, the gateway address.
  func ensureBridge(_ n: DesiredNetwork, report: inout ReconcileReport) throws {
    if try self.link(named: n.bridgeName) == nil {
      try self.createLink(name: n.bridgeName, kind: .bridge, mtu: n.mtu)
      report.changes.append("create bridge \(n.bridgeName)")
    }
    try self.ensureLink(n.bridgeName, mtu: n.mtu, report: &report)
    try self.ensureAddresses(on: n.bridgeName, [n.gateway], report: &report)
  }

  /// Makes the Weft routes through `device` (index `index`) exactly `wanted`.
  func ensureRoutes(_ wanted: Set<Route>, through device: String, index: Int32, report: inout ReconcileReport)
    throws
  {
    let have = Set(
      try self.routes().filter { $0.outputIndex == index && $0.proto == Route.weftProtocol }.map {
        var r = $0
        r.metric = nil
        return r
      })
    for r in wanted.subtracting(have) {
      try self.replaceRoute(r)
      report.changes.append("add route \(r.destination)\(r.gateway.map { " via \($0)" } ?? "") dev \(device)")
    }
    for r in have.subtracting(wanted) {
      try self.deleteRoute(r)
      report.changes.append("delete route \(r.destination) dev \(device)")
    }
  }
}
