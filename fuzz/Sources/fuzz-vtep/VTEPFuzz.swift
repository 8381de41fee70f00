import FuzzSupport
import WeftDatapath
import WeftWire

/// Host 1 of a network (VNI 7, 100.96.1.0/24) with one peer, host 2 (198.18.0.2, 100.96.2.0/24).
let table = VTEPTable([
  DesiredNetwork(
    name: "blue", vni: 7, subnet: IPPrefix("100.96.1.0/24")!, vtepMAC: MACAddress(2, 0x57, 100, 96, 1, 0),
    mtu: 1450,
    peers: [
      Peer(
        host: "h2", subnet: IPPrefix("100.96.2.0/24")!, vtepMAC: MACAddress(2, 0x57, 100, 96, 2, 0),
        underlay: IPAddress("198.18.0.2")!)
    ])
])

/// One input through the userspace VTEP's receive path as the packet loop runs it (GRO split,
/// decapsulation, virtio header), then through the transmit path as an inner packet. The first
/// byte picks the sender (member or stranger) and the GRO segment size.
func fuzzVTEP(_ data: UnsafePointer<UInt8>?, _ size: Int) {
  guard let data, size > 0 else { return }
  let control = data[0]
  let source: UInt32 = control & 1 == 0 ? 0xC612_0002 : 0xC612_0009
  let segmentSize = Int(control >> 1) * 16
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size - 1 + 64, alignment: 16)
  defer { buffer.deallocate() }
  let count = size - 1
  buffer.copyMemory(from: UnsafeRawBufferPointer(start: data + 1, count: count))
  var offset = 0
  while offset < count {
    let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<count])
    let length = VTEPCodec.datagramLength(UnsafeRawBufferPointer(rest), segmentSize: segmentSize)
    invariant(length > 0 && length <= rest.count, "datagram length \(length) of \(rest.count)")
    let datagram = UnsafeMutableRawBufferPointer(rebasing: rest[..<length])
    if case .deliver(_, _, let inner) = VTEPCodec.decapsulate(
      UnsafeRawBufferPointer(datagram), source: source, table: table)
    {
      invariant(VTEPCodec.innerOffset + inner <= datagram.count, "inner packet beyond the datagram")
      _ = VTEPCodec.writeVirtioHeader(datagram, length: inner, mtu: 1450, segmentSize: segmentSize)
    }
    offset += length
  }
  // Transmit: the input as an inner packet behind the 22 bytes of headroom.
  let tx = UnsafeMutableRawBufferPointer.allocate(byteCount: VTEPCodec.innerOffset + count, alignment: 16)
  defer { tx.deallocate() }
  UnsafeMutableRawBufferPointer(rebasing: tx[VTEPCodec.innerOffset...]).copyMemory(
    from: UnsafeRawBufferPointer(start: data + 1, count: count))
  if case .send(_, let length, _) = VTEPCodec.encapsulate(tx, length: count, network: table.networks[7]!) {
    invariant(length == VTEPCodec.innerOffset + count, "frame length")
  }
}

/// libFuzzer entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  fuzzVTEP(data, size)
  return 0
}

/// The process entry point (see the other targets: SwiftPM renames `main`).
@_cdecl("fuzz_vtep_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
  runFuzzer(argc, argv) { data, size in fuzzTestOneInput(data, size) }
}
