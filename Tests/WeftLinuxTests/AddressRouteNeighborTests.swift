import Foundation
import Testing
import WeftLinux
import WeftWire

@Suite("rtnetlink addresses, routes, neighbours and FDB, checked with ip -j and bridge -j")
struct AddressRouteNeighborTests {
  @Test func addressesBothFamilies() throws {
    try KernelFixture.withNamespace { ns, nl in
      try nl.createLink(name: "a0", kind: .bridge)
      try nl.setUp("a0")
      try nl.addAddress(IPPrefix("100.96.1.1/24")!, to: "a0")
      try nl.addAddress(IPPrefix("fd00:96::1/64")!, to: "a0")
      let info = try #require(try ipJSON(ns, "addr", "show", "a0").first?["addr_info"] as? [[String: Any]])
      let seen = Set(
        info.compactMap { a in (a["local"] as? String).map { "\($0)/\(a["prefixlen"] as? Int ?? -1)" } })
      #expect(seen.contains("100.96.1.1/24"))
      #expect(seen.contains("fd00:96::1/64"))
      let ours = Set(try nl.addresses(of: "a0").map(\.prefix.description))
      #expect(ours.isSuperset(of: ["100.96.1.1/24", "fd00:96::1/64"]))
      try nl.deleteAddress(IPPrefix("100.96.1.1/24")!, from: "a0")
      let after = try ipJSON(ns, "-4", "addr", "show", "a0").first?["addr_info"] as? [[String: Any]] ?? []
      #expect(after.isEmpty)
    }
  }

  @Test func routesWithOnlinkTableAndMetric() throws {
    try KernelFixture.withNamespace { ns, nl in
      try nl.createLink(name: "r0", kind: .bridge)
      try nl.setUp("r0")
      try nl.addAddress(IPPrefix("100.96.0.1/24")!, to: "r0")
      let index = try #require(try nl.link(named: "r0")).index
      // flannel-style: the remote subnet via the remote VTEP address, on-link.
      let overlay = Route(
        destination: IPPrefix("100.96.7.0/24")!, gateway: IPAddress("100.96.7.0"), outputIndex: index,
        metric: 50, onLink: true)
      try nl.addRoute(overlay)
      try nl.addRoute(
        Route(destination: IPPrefix("10.99.0.0/16")!, outputIndex: index, table: 1000, metric: 7))
      let main = try ipJSON(ns, "route", "show", "100.96.7.0/24")
      let r = try #require(main.first)
      #expect(r["gateway"] as? String == "100.96.7.0")
      #expect(r["dev"] as? String == "r0")
      #expect(r["metric"] as? Int == 50)
      #expect((r["flags"] as? [String])?.contains("onlink") == true)
      let t = try #require(try ipJSON(ns, "route", "show", "table", "1000").first)
      #expect(t["dst"] as? String == "10.99.0.0/16")
      #expect(t["metric"] as? Int == 7)
      #expect(try nl.routes().contains(overlay))
      #expect(try nl.routes(table: 1000).count == 1)
      try nl.replaceRoute(overlay)  // idempotent
      try nl.deleteRoute(overlay)
      #expect(try ipJSON(ns, "route", "show", "100.96.7.0/24").isEmpty)
    }
  }

  @Test func permanentNeighbours() throws {
    try KernelFixture.withNamespace { ns, nl in
      try nl.createLink(name: "n0", kind: .bridge)
      let mac = MACAddress("02:57:00:00:00:07")!
      try nl.replaceNeighbor(IPAddress("100.96.7.0")!, mac: mac, on: "n0")
      try nl.replaceNeighbor(IPAddress("100.96.7.0")!, mac: mac, on: "n0")  // replace is idempotent
      try nl.replaceNeighbor(IPAddress("fd00::7")!, mac: mac, on: "n0")
      let v4 = try #require(try ipJSON(ns, "-4", "neigh", "show", "dev", "n0").first)
      #expect(v4["dst"] as? String == "100.96.7.0")
      #expect(v4["lladdr"] as? String == mac.description)
      #expect((v4["state"] as? [String])?.contains("PERMANENT") == true)
      let v6 = try #require(try ipJSON(ns, "-6", "neigh", "show", "dev", "n0").first)
      #expect(v6["dst"] as? String == "fd00::7")
      #expect(try nl.neighbors(of: "n0").first?.isPermanent == true)
      try nl.deleteNeighbor(IPAddress("100.96.7.0")!, on: "n0")
      #expect(try ipJSON(ns, "-4", "neigh", "show", "dev", "n0").isEmpty)
    }
  }

  @Test func fdbAppendWithDestination() throws {
    try KernelFixture.withNamespace { ns, nl in
      try nl.createLink(name: "vx1", kind: .vxlan(VXLANOptions(vni: 42)))
      let mac = MACAddress("02:57:00:00:00:09")!
      try nl.appendFDB(mac, destination: IPAddress("198.18.0.9")!, on: "vx1")
      try nl.appendFDB(.zero, destination: IPAddress("198.18.0.2")!, on: "vx1")
      try nl.appendFDB(.zero, destination: IPAddress("198.18.0.3")!, on: "vx1")
      let entries = try ipJSON(ns, "fdb", "show", "dev", "vx1", program: "bridge")
      let forMac = entries.filter { $0["mac"] as? String == mac.description }
      #expect(forMac.count == 1)
      #expect(forMac.first?["dst"] as? String == "198.18.0.9")
      #expect((forMac.first?["flags"] as? [String])?.contains("self") == true)
      #expect(forMac.first?["state"] as? String == "permanent")
      let flood = entries.filter { $0["mac"] as? String == "00:00:00:00:00:00" }.compactMap {
        $0["dst"] as? String
      }
      #expect(Set(flood) == ["198.18.0.2", "198.18.0.3"])
      let ours = try nl.fdb(of: "vx1").filter { $0.mac == mac }
      #expect(ours.first?.destination == IPAddress("198.18.0.9"))
      try nl.deleteFDB(mac, destination: IPAddress("198.18.0.9")!, on: "vx1")
      #expect(
        try ipJSON(ns, "fdb", "show", "dev", "vx1", program: "bridge").contains {
          $0["mac"] as? String == mac.description
        } == false)
    }
  }
}
