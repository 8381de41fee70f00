import NIOCore
import Testing
import WeftAgent
import WeftDatapath
import WeftWire

/// An IPv4 packet (UDP, ports 1000 -> 2000) from `source` to `destination` with `payload` bytes.
func ipv4Packet(_ source: String, _ destination: String, payload: Int = 32, sourcePort: UInt16 = 1000)
  -> [UInt8]
{
  let total = 20 + 8 + payload
  var p = [UInt8](repeating: 0, count: total)
  p[0] = 0x45
  p[2] = UInt8(total >> 8)
  p[3] = UInt8(total & 0xff)
  p[6] = 0x40  // DF
  p[8] = 64
  p[9] = 17
  p.replaceSubrange(12..<16, with: IPv4Address(source)!.octets)
  p.replaceSubrange(16..<20, with: IPv4Address(destination)!.octets)
  var sum = Checksum()
  sum.add(octets: p[0..<20])
  let checksum = sum.value
  p[10] = UInt8(checksum >> 8)
  p[11] = UInt8(checksum & 0xff)
  p[20] = UInt8(sourcePort >> 8)
  p[21] = UInt8(sourcePort & 0xff)
  p[22] = 0x07
  p[23] = 0xd0
  p[24] = UInt8((8 + payload) >> 8)
  p[25] = UInt8((8 + payload) & 0xff)
  return p
}

/// Host 1 of network blue (VNI 7, 100.96.1.0/24) with peers host 2 and host 3.
let blueHost1 = VTEPTable([
  network(
    "blue", vni: 7, subnet: "100.96.1.0/24",
    peers: [peer("h2", "100.96.2.0/24", "198.18.0.2"), peer("h3", "100.96.3.0/24", "198.18.0.3")])
])
let underlayH2 = IPv4Address("198.18.0.2")!.value

/// Encapsulates `packet` as host 1 would; returns the UDP payload and the peer, or the drop.
func encapsulate(_ packet: [UInt8], table: VTEPTable = blueHost1) -> ([UInt8], VTEPPeer?, VTEPDropReason?) {
  var buffer = [UInt8](repeating: 0xee, count: VTEPCodec.innerOffset + packet.count)
  buffer.replaceSubrange(VTEPCodec.innerOffset..., with: packet)
  let result = buffer.withUnsafeMutableBytes {
    VTEPCodec.encapsulate($0, length: packet.count, network: table.networks[7]!)
  }
  switch result {
  case .send(let peer, let length, _): return (Array(buffer[..<length]), peer, nil)
  case .drop(let reason): return ([], nil, reason)
  }
}

/// A VXLAN payload as host 2's VTEP would send it to host 1 (then edited by the test).
func fromHost2(_ inner: [UInt8], vni: UInt32 = 7) -> [UInt8] {
  let h1 = vtepMAC("100.96.1.0/24")
  let h2 = vtepMAC("100.96.2.0/24")
  return [0x08, 0, 0, 0, UInt8(vni >> 16), UInt8(vni >> 8 & 0xff), UInt8(vni & 0xff), 0] + h1.octets
    + h2.octets
    + [0x08, 0x00] + inner
}

func decapsulate(_ datagram: [UInt8], from source: UInt32 = underlayH2) -> VTEPCodec.Decapsulated {
  datagram.withUnsafeBytes { VTEPCodec.decapsulate($0, source: source, table: blueHost1) }
}

func dropReason(_ d: VTEPCodec.Decapsulated) -> VTEPDropReason? {
  if case .drop(let reason, _) = d { return reason }
  return nil
}

@Suite("userspace VTEP framing and checks (pure logic)")
struct VTEPCodecTests {
  @Test func encapsulatedFramesDecodeWithWeftWireAsTheKernelExpects() throws {
    let packet = ipv4Packet("100.96.1.5", "100.96.2.9", payload: 100)
    let (payload, peer, drop) = encapsulate(packet)
    #expect(drop == nil)
    #expect(peer?.host == "h2")
    // The independent decoder: VXLAN I flag and VNI, then inner Ethernet to h2's VTEP MAC, from
    // ours, type IPv4, carrying the packet unchanged.
    let (vni, inner) = try VXLANEncapsulation.decapsulate(udpPayload: ByteBuffer(bytes: payload))
    #expect(vni.rawValue == 7)
    #expect(payload[0] == 0x08 && payload[1...3].allSatisfy { $0 == 0 } && payload[7] == 0)
    let ethernet = try EthernetFrame(decoding: inner)
    #expect(ethernet.destination == vtepMAC("100.96.2.0/24"))
    #expect(ethernet.source == vtepMAC("100.96.1.0/24"))
    #expect(Array(payload[VTEPCodec.innerOffset...]) == packet)
    // To host 3's subnet goes to host 3; elsewhere is no route.
    #expect(encapsulate(ipv4Packet("100.96.1.5", "100.96.3.1")).1?.host == "h3")
    #expect(encapsulate(ipv4Packet("100.96.1.5", "100.97.2.1")).2 == .noRoute)
    #expect(encapsulate([0x60] + [UInt8](repeating: 0, count: 39)).2 == .notIPv4)
    #expect(encapsulate([0x10] + [UInt8](repeating: 0, count: 39)).2 == .badInnerPacket)
  }

  @Test func flowHashKeepsAFlowTogetherAndSpreadsFlows() {
    func flow(_ port: UInt16) -> UInt32 {
      ipv4Packet("100.96.1.5", "100.96.2.9", sourcePort: port).withUnsafeBytes { VTEPCodec.flowHash($0) }
    }
    #expect(flow(1000) == flow(1000))
    let sockets = Set((1000..<1064).map { flow($0) % 4 })
    #expect(sockets.count == 4)
  }

  @Test func validFramesAreDeliveredWithTheirInnerLength() {
    let inner = ipv4Packet("100.96.2.7", "100.96.1.5", payload: 60)
    guard case .deliver(let vni, let peer, let length) = decapsulate(fromHost2(inner) + [0, 0, 0, 0]) else {
      Issue.record("a valid frame was dropped")
      return
    }
    // Ethernet padding after the IPv4 packet is not delivered.
    #expect(vni == 7 && peer.host == "h2" && length == inner.count)
  }

  @Test func aLookupCacheKeptAcrossDatagramsGivesTheSameVerdictsAsFreshLookups() {
    // One cache through a mixed sequence, as a receive loop keeps it through a batch: each
    // verdict must be what a fresh lookup gives (the cache never lends one sender's or one
    // network's standing to another datagram).
    let good = fromHost2(ipv4Packet("100.96.2.7", "100.96.1.5"))
    let stranger = IPv4Address("198.18.0.9")!.value
    let sequence: [([UInt8], UInt32)] = [
      (good, underlayH2), (good, underlayH2), (good, stranger), (good, underlayH2),
      (fromHost2(ipv4Packet("100.96.2.7", "100.96.1.5"), vni: 8), underlayH2), (good, underlayH2),
      (fromHost2(ipv4Packet("100.96.3.7", "100.96.1.5")), underlayH2),
      (fromHost2(ipv4Packet("100.96.2.7", "100.96.9.5")), underlayH2), (good, underlayH2),
      (fromHost2(ipv4Packet("100.96.3.7", "100.96.1.5")), IPv4Address("198.18.0.3")!.value),
      (good, IPv4Address("198.18.0.3")!.value), (good, underlayH2),
    ]
    var cache = VTEPCodec.LookupCache()
    for (datagram, source) in sequence {
      let cached = datagram.withUnsafeBytes {
        VTEPCodec.decapsulate($0, source: source, table: blueHost1, cache: &cache)
      }
      let fresh = decapsulate(datagram, from: source)
      #expect(dropReason(cached) == dropReason(fresh))
      if case .deliver(let vni, let peer, let length) = cached, case .deliver(let v, let p, let l) = fresh {
        #expect(vni == v && peer == p && length == l)
      }
    }
    #expect(dropReason(decapsulate(good, from: stranger)) == .unknownPeer)
    #expect(dropReason(decapsulate(good, from: IPv4Address("198.18.0.3")!.value)) == .forgedSource)
  }

  @Test func everyKindOfBadFrameIsDroppedForItsReason() {
    let good = fromHost2(ipv4Packet("100.96.2.7", "100.96.1.5"))
    #expect(dropReason(decapsulate(Array(good[..<41]))) == .truncated)
    var flags = good
    flags[0] = 0
    #expect(dropReason(decapsulate(flags)) == .badFlags)
    #expect(dropReason(decapsulate(fromHost2(ipv4Packet("100.96.2.7", "100.96.1.5"), vni: 8))) == .unknownVNI)
    #expect(dropReason(decapsulate(good, from: IPv4Address("198.18.0.9")!.value)) == .unknownPeer)
    var mac = good
    mac[8] ^= 0xff
    #expect(dropReason(decapsulate(mac)) == .wrongInnerMAC)
    var arp = good
    arp[20] = 0x08
    arp[21] = 0x06
    #expect(dropReason(decapsulate(arp)) == .notIPv4)
    var long = good
    long[VTEPCodec.innerOffset + 3] = 0xff  // total length beyond the datagram
    #expect(dropReason(decapsulate(long)) == .badInnerPacket)
    var ihl = good
    ihl[VTEPCodec.innerOffset] = 0x44
    #expect(dropReason(decapsulate(ihl)) == .badInnerPacket)
    // Host 2 may only speak for its own subnet, and only to ours.
    #expect(dropReason(decapsulate(fromHost2(ipv4Packet("100.96.3.7", "100.96.1.5")))) == .forgedSource)
    #expect(dropReason(decapsulate(fromHost2(ipv4Packet("100.96.2.7", "100.96.3.5")))) == .wrongDestination)
  }

  @Test func randomInputNeverCrashesAndIsAlmostNeverDelivered() {
    var rng = SystemRandomNumberGenerator()
    var delivered = 0
    for _ in 0..<20_000 {
      let length = Int.random(in: 0..<200, using: &rng)
      var datagram = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
      if length > 8 && Bool.random(using: &rng) {  // valid header, random inside
        datagram.replaceSubrange(0..<8, with: [0x08, 0, 0, 0, 0, 0, 7, 0])
      }
      if case .deliver = decapsulate(datagram) { delivered += 1 }
    }
    #expect(delivered == 0)
  }
}

/// The VTEP MAC an agent gives the holder of `subnet`.
func vtepMAC(_ subnet: String) -> MACAddress { DesiredStateBuilder.vtepMAC(IPPrefix(subnet)!) }
