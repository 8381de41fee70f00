import Foundation
import Testing
import WeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

@Suite("namespaces, TUN and batched UDP on the real kernel")
struct NamespaceTunUDPTests {
  @Test func namespaceIsVisibleToIPAndEnteredOnAThread() throws {
    let ns = try KernelFixture.makeNamespace()
    #expect(try tool(["ip", "netns", "list"]).contains(ns.name))
    let inside = try ns.perform { try String(contentsOfFile: "/proc/thread-self/net/dev", encoding: .utf8) }
    let outside = try String(contentsOfFile: "/proc/thread-self/net/dev", encoding: .utf8)
    #expect(inside != outside)  // a fresh namespace holds only lo
    #expect(inside.contains("lo:"))
    let duplicate = #expect(throws: SystemError.self) { try NetworkNamespace.create(ns.name) }
    #expect(duplicate?.errno == EEXIST)
    try ns.delete()
    #expect(!ns.exists)
    #expect(try tool(["ip", "netns", "list"]).contains(ns.name) == false)
  }

  @Test func asyncRunEntersTheNamespace() async throws {
    let ns = try KernelFixture.makeNamespace()
    defer { try? ns.delete() }
    try ns.openNetlink().createLink(name: "mark0", kind: .bridge)
    let names = try await ns.run { try Netlink().links().map(\.name) }
    #expect(names.contains("mark0"))
  }

  @Test func tunWithVnetHeaderAndOffloadsCarriesPackets() throws {
    try KernelFixture.withNamespace { ns, nl in
      let options = TunOptions(
        virtioNetHeader: true, multiQueue: true,
        offloads: TunOptions.checksumOffload | TunOptions.tcpSegmentationOffload)
      let tun = try ns.perform { try TunDevice(name: "wt0", options: options) }
      #expect(tun.name == "wt0")
      #expect(try tun.features() & 0x4000 != 0)  // IFF_VNET_HDR supported
      let link = try #require(try ipJSON(ns, "-d", "link", "show", "wt0").first)
      let data = (link["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
      #expect(data?["type"] as? String == "tun")
      #expect(data?["pi"] as? Bool == false)
      #expect(data?["vnet_hdr"] as? Bool == true)
      #expect(data?["multi_queue"] as? Bool == true)
      // A second queue of the same device.
      let second = try ns.perform { try TunDevice(name: "wt0", options: options) }
      #expect(second.name == "wt0")

      // Plain TUN: a ping to an address routed into it arrives as an IPv4 packet we can read.
      let plain = try ns.perform { try TunDevice(name: "wt1") }
      try nl.addAddress(IPPrefix("100.96.200.1/24")!, to: "wt1")
      try nl.setUp("wt1")
      let pinger = Thread {
        _ = try? ns.spawnAndWait(["ping", "-c", "1", "-W", "1", "100.96.200.2"])
      }
      pinger.start()
      var buffer = [UInt8](repeating: 0, count: 2048)
      var echo: [UInt8] = []
      for _ in 0..<20 {
        let n = try buffer.withUnsafeMutableBytes { try plain.read(into: $0) } ?? 0
        let packet = Array(buffer[0..<n])
        if n >= 28, packet[0] >> 4 == 4, packet[9] == 1, packet[20] == 8 {
          echo = packet
          break
        }
      }
      #expect(echo.count >= 28)
      #expect(Array(echo[16..<20]) == [100, 96, 200, 2])
    }
  }

  @Test func batchedUDPWithGSOAndGRO() throws {
    try KernelFixture.withNamespace { ns, nl in
      try nl.setUp("lo")
      let (rx, tx) = try ns.perform {
        (
          try UDPBatchSocket(bind: IPEndpoint(IPAddress("127.0.0.1")!, 0)),
          try UDPBatchSocket(bind: IPEndpoint(IPAddress("127.0.0.1")!, 0))
        )
      }
      // Ten datagrams in one sendmmsg.
      let out = DatagramBatch(capacity: 10, slotSize: 4096)
      for i in 0..<10 {
        out.buffer(i).storeBytes(of: UInt32(i).bigEndian, as: UInt32.self)
        out.set(i, length: 100 + i, peer: rx.local)
      }
      out.count = 10
      #expect(try tx.send(out) == 10)
      let inbox = DatagramBatch(capacity: 64, slotSize: 65_536)
      var lengths: [Int] = []
      while lengths.count < 10 {
        try rx.receive(into: inbox)
        for i in 0..<inbox.count { lengths.append(inbox.length(i)) }
        #expect(inbox.peer(0) == tx.local)
      }
      #expect(lengths == (0..<10).map { 100 + $0 })

      // One GSO super-datagram of 3 x 1000 bytes arrives as three datagrams without GRO...
      #expect(tx.supportsGSO())
      out.set(0, length: 3000, peer: rx.local, segmentSize: 1000)
      out.count = 1
      #expect(try tx.send(out) == 1)
      var sizes: [Int] = []
      while sizes.reduce(0, +) < 3000 {
        try rx.receive(into: inbox)
        for i in 0..<inbox.count { sizes.append(inbox.length(i)) }
      }
      #expect(sizes == [1000, 1000, 1000])

      // ...and, with GRO on, as one buffer that says its segment size.
      #expect(rx.enableGRO())
      #expect(try tx.send(out) == 1)
      try rx.receive(into: inbox)
      #expect(inbox.length(0) == 3000)
      #expect(inbox.segmentSize(0) == 1000)
    }
  }
}
