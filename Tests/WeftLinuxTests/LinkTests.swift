import Foundation
import Testing
import WeftLinux
import WeftWire

@Suite("rtnetlink links, checked with ip -j")
struct LinkTests {
  @Test func vethPeerCreatedDirectlyInAnotherNamespace() throws {
    try KernelFixture.withNamespace { ns, nl in
      let other = try KernelFixture.makeNamespace()
      defer { try? other.delete() }
      try nl.createLink(name: "va", kind: .veth(peer: "vb", peerNamespace: other), mtu: 1400)
      let here = try ipJSON(ns, "link", "show", "va")
      let there = try ipJSON(other, "link", "show", "vb")
      #expect(here.first?["mtu"] as? Int == 1400)
      #expect(there.first?["mtu"] as? Int == 1400)
      #expect(there.first?["ifname"] as? String == "vb")
      #expect(try ipJSON(ns, "link", "show").contains { $0["ifname"] as? String == "vb" } == false)
    }
  }

  @Test func bridgeWithMasterMTUAndUp() throws {
    try KernelFixture.withNamespace { ns, nl in
      try nl.createLink(name: "br0", kind: .bridge)
      try nl.createLink(name: "p0", kind: .veth(peer: "p1"))
      try nl.setMaster("p0", master: "br0")
      try nl.setMTU("p0", 1450)
      try nl.setUp("br0")
      try nl.setUp("p0")
      let mac = MACAddress("02:00:5e:10:00:01")!
      try nl.setAddress("br0", mac)
      let p0 = try #require(try ipJSON(ns, "-d", "link", "show", "p0").first)
      #expect(p0["master"] as? String == "br0")
      #expect(p0["mtu"] as? Int == 1450)
      #expect((p0["flags"] as? [String])?.contains("UP") == true)
      let br = try #require(try ipJSON(ns, "-d", "link", "show", "br0").first)
      #expect((br["linkinfo"] as? [String: Any])?["info_kind"] as? String == "bridge")
      #expect(br["address"] as? String == "02:00:5e:10:00:01")
      try nl.setDown("p0")
      try nl.setMaster("p0", master: nil)
      let after = try #require(try ipJSON(ns, "link", "show", "p0").first)
      #expect(after["master"] == nil)
      #expect((after["flags"] as? [String])?.contains("UP") == false)
    }
  }

  @Test func vxlanOptionsReachTheKernel() throws {
    try KernelFixture.withNamespace { ns, nl in
      try nl.createLink(name: "u0", kind: .veth(peer: "u1"))
      try nl.addAddress(IPPrefix("198.18.0.1/24")!, to: "u0")
      let underlay = try #require(try nl.link(named: "u0"))
      let options = VXLANOptions(
        vni: 0xABCDE, port: 4789, local: IPAddress("198.18.0.1"), underlayIndex: underlay.index,
        learning: false, udpChecksum: true, zeroChecksum6Tx: true, zeroChecksum6Rx: true)
      try nl.createLink(name: "vx0", kind: .vxlan(options), mtu: 1450)
      let vx = try #require(try ipJSON(ns, "-d", "link", "show", "vx0").first)
      let info = try #require(vx["linkinfo"] as? [String: Any])
      #expect(info["info_kind"] as? String == "vxlan")
      let data = try #require(info["info_data"] as? [String: Any])
      #expect(data["id"] as? Int == 0xABCDE)
      #expect(data["port"] as? Int == 4789)
      #expect(data["learning"] as? Bool == false)
      #expect(data["local"] as? String == "198.18.0.1")
      #expect(data["link"] as? String == "u0")
      #expect(data["udp_csum"] as? Bool == true)
      #expect(data["udp_zero_csum6_tx"] as? Bool == true)
      #expect(data["udp_zero_csum6_rx"] as? Bool == true)
      #expect((data["port_range"] as? [String: Any])?["low"] as? Int == 49152)
      #expect(vx["mtu"] as? Int == 1450)
      // Our own reader agrees with what we wrote.
      let read = try #require(try nl.link(named: "vx0"))
      #expect(read.kind == .vxlan(options))
    }
  }

  @Test func vrfAndDummyWhereTheKernelHasThem() throws {
    try KernelFixture.withNamespace { ns, nl in
      for (kind, name) in [(LinkKind.vrf(table: 100), "vrf0"), (.dummy, "dm0")] {
        if kernelSupports(linkKind: kind.kernelName) {
          try nl.createLink(name: name, kind: kind)
          let link = try #require(try ipJSON(ns, "-d", "link", "show", name).first)
          #expect((link["linkinfo"] as? [String: Any])?["info_kind"] as? String == kind.kernelName)
          if case .vrf = kind {
            let data = (link["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
            #expect(data?["table"] as? Int == 100)
          }
        } else {
          // This kernel lacks the driver: the error names the operation, object and reason.
          let error = #expect(throws: NetlinkError.self) { try nl.createLink(name: name, kind: kind) }
          #expect(error?.operation == "create \(kind.kernelName) link")
          #expect(error?.object == name)
          #expect(error?.errno == EOPNOTSUPP)
          #expect(error?.description.contains(name) == true)
        }
      }
    }
  }

  @Test func moveLinkToNamespaceAndDelete() throws {
    try KernelFixture.withNamespace { ns, nl in
      let other = try KernelFixture.makeNamespace()
      defer { try? other.delete() }
      try nl.createLink(name: "m0", kind: .veth(peer: "m1"))
      try nl.moveToNamespace("m1", other)
      #expect(try ipJSON(other, "link", "show", "m1").count == 1)
      #expect(try nl.link(named: "m1") == nil)
      try nl.deleteLink(name: "m0")
      #expect(try nl.link(named: "m0") == nil)
      #expect(try ipJSON(other, "link", "show").contains { $0["ifname"] as? String == "m1" } == false)
    }
  }

  @Test func errorsNameOperationObjectAndErrno() throws {
    try KernelFixture.withNamespace { _, nl in
      try nl.createLink(name: "e0", kind: .bridge)
      let exists = #expect(throws: NetlinkError.self) { try nl.createLink(name: "e0", kind: .bridge) }
      #expect(exists?.errno == EEXIST)
      #expect(exists?.description.hasPrefix("create bridge link e0: File exists") == true)
      let missing = #expect(throws: NetlinkError.self) { try nl.setUp("nope0") }
      #expect(missing?.errno == ENODEV)
      #expect(missing?.object == "nope0")
      let tooLong = #expect(throws: NetlinkError.self) {
        try nl.createLink(name: "a-name-far-too-long", kind: .bridge)
      }
      #expect(tooLong?.errno == EINVAL)
    }
  }

  @Test func listedLinksMatchIP() throws {
    try KernelFixture.withNamespace { ns, nl in
      try nl.createLink(name: "l0", kind: .bridge, mtu: 1300)
      let ours = try nl.links().map(\.name).sorted()
      let theirs = try ipJSON(ns, "link", "show").compactMap { $0["ifname"] as? String }.sorted()
      #expect(ours == theirs)
      #expect(try nl.links().first { $0.name == "l0" }?.mtu == 1300)
    }
  }
}
