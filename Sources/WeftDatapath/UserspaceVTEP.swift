import Foundation
import Synchronization
import WeftLinux
import WeftWire

/// The packet engine of the userspace datapath: one UDP socket on the VXLAN port receives for
/// every network, a few send sockets give flows different outer source ports, and each network's
/// TUN has a thread of its own that reads, encapsulates and sends in batches.
///
/// Packet loops run on dedicated threads with blocking `poll`, outside any event loop: a TUN
/// takes one packet per write, and batching (`recvmmsg`/`sendmmsg`, UDP GRO) pays most without
/// a scheduler in between. Buffers are allocated once per loop; memory stays flat under load.
final class UserspaceVTEP: Sendable {
  /// What the loops read once per batch: the table and the TUN of each network.
  struct Snapshot: Sendable {
    var table = VTEPTable([])
    var tuns: [UInt32: TunDevice] = [:]
    var names: [UInt32: String] = [:]
  }

  /// The snapshot behind a lock, shared by reference with the loops.
  final class SnapshotBox: Sendable {
    let state = Mutex(Snapshot())
  }

  /// Send sockets per host; the flow hash picks one, so its port is the flow's outer source port.
  static let sendSocketCount = 4
  /// Datagrams per receive system call; TUN reads per transmit burst.
  static let batchSize = 64
  /// Send slots per socket (64 KiB each: a slot holds one UDP GSO train).
  static let transmitSlots = 16
  /// The most a UDP GSO send may carry: the largest IPv4 UDP payload.
  static let maxGSOBytes = 65_507
  /// The largest burst (bytes) after which a loop spins before it sleeps.
  static let spinBurstLimit = 4_096
  /// Segments per UDP GSO send (the kernel's UDP_MAX_SEGMENTS on older kernels).
  static let maxGSOFrames = 64

  let port: UInt16
  /// How long a TUN reader keeps polling after a small burst before it sleeps.
  let spin: Duration
  let receiver: UDPBatchSocket
  let senders: [UDPBatchSocket]
  let counters = VTEPCounterStore()
  private let snapshot = SnapshotBox()
  private let transmitters = Mutex([UInt32: PacketLoop]())
  private let receiveLoop: PacketLoop
  /// Whether the receive socket hands over GRO-coalesced datagrams.
  let receiveGRO: Bool

  /// Binds the sockets on the underlay address and starts the receive loop.
  init(underlay: IPAddress, port: UInt16, spin: Duration = .zero) throws {
    self.port = port
    self.spin = spin
    self.receiver = try UDPBatchSocket(bind: IPEndpoint(underlay, port), nonBlocking: true)
    self.senders = try (0..<Self.sendSocketCount).map { _ in try UDPBatchSocket(bind: IPEndpoint(underlay, 0))
    }
    self.receiver.setBufferSizes(8 << 20)
    for sender in self.senders { sender.setBufferSizes(4 << 20) }
    self.receiveGRO = self.receiver.enableGRO()
    let receiver = self.receiver
    let snapshot = self.snapshot
    let counters = self.counters
    // Only the TUN readers spin: measured on two CPUs, spinning every loop of a round trip
    // (four threads) crowded the CPUs and doubled the p99 round trip, while the readers alone
    // keep the median as low and the p99 near the kernel's.
    self.receiveLoop = try PacketLoop(name: "weft-vtep-rx", descriptor: receiver.fileDescriptor) {
      stop in
      Self.receive(from: receiver, snapshot: snapshot, counters: counters, stop: stop)
    }
  }

  /// Replaces the table and the TUNs; starts a transmit loop for each new network and stops the
  /// loops of networks that are gone.
  func update(table: VTEPTable, tuns: [UInt32: TunDevice]) throws {
    let names = table.networks.mapValues(\.name)
    self.snapshot.state.withLock { $0 = Snapshot(table: table, tuns: tuns, names: names) }
    var stopped: [PacketLoop] = []
    try self.transmitters.withLock { loops in
      for (vni, loop) in loops where tuns[vni] == nil || tuns[vni] !== loop.tun {
        stopped.append(loop)
        loops[vni] = nil
      }
      for (vni, tun) in tuns where loops[vni] == nil {
        let senders = self.senders
        let snapshot = self.snapshot
        let counters = self.counters
        let port = self.port
        loops[vni] = try PacketLoop(
          name: "weft-vtep-tx\(vni)", descriptor: tun.fileDescriptor, tun: tun, spin: self.spin
        ) {
          stop in
          Self.transmit(
            vni: vni, tun: tun, senders: senders, port: port, snapshot: snapshot, counters: counters,
            stop: stop)
        }
      }
    }
    for loop in stopped { loop.stop() }
  }

  /// Stops every loop (the sockets close when the engine goes).
  func stop() {
    let loops = self.transmitters.withLock { loops in
      defer { loops = [:] }
      return Array(loops.values)
    }
    for loop in loops { loop.stop() }
    self.receiveLoop.stop()
  }

  deinit { self.stop() }

  // MARK: - The loops

  /// TUN to underlay: read a burst of packets (super packets of up to 64 KiB when the TUN has
  /// TSO/USO on), cut each into VXLAN frames for its peer, and send them per socket, a super
  /// packet's frames as one UDP GSO datagram train where the kernel takes them.
  private static func transmit(
    vni: UInt32, tun: TunDevice, senders: [UDPBatchSocket], port: UInt16, snapshot: SnapshotBox,
    counters: VTEPCounterStore, stop: PacketLoop.Stop
  ) {
    let batches = senders.map { _ in DatagramBatch(capacity: transmitSlots, slotSize: 65_536) }
    let packet = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536 + 64, alignment: 16)
    let frameHeader = UnsafeMutableRawBufferPointer.allocate(byteCount: VTEPCodec.innerOffset, alignment: 8)
    defer {
      packet.deallocate()
      frameHeader.deallocate()
    }
    var gso = senders.allSatisfy { $0.supportsGSO() }
    var counts = LoopCounters(store: counters)
    func flush(_ k: Int) {
      let batch = batches[k]
      var done = 0
      while done < batch.count {
        do {
          done += try senders[k].send(batch, from: done)
        } catch {
          // A kernel that takes UDP_SEGMENT but fails the send (EIO without checksum offload on
          // the route, EINVAL for a size it will not cut) turns GSO off for good; the frames of
          // that datagram are lost once, as if dropped on the wire.
          if gso && (error.errno == EIO || error.errno == EINVAL) && batch.segmentSize(done) > 0 {
            gso = false
          }
          counts.tally.dropped(.ioError, vni: vni, peer: nil)
          done += 1
        }
      }
      batch.count = 0
    }
    var burst = Int.max
    while Self.next(stop, &counts, lastBurst: burst) {
      burst = 0
      let view = snapshot.state.withLock { $0 }
      counts.names = view.names
      guard let network = view.table.networks[vni] else {
        Self.drain(tun)
        continue
      }
      for _ in 0..<batchSize {
        let read: Int?
        do {
          read = try tun.read(into: packet)
        } catch {
          counts.tally.dropped(.ioError, vni: vni, peer: nil)
          break
        }
        guard let read else { break }
        burst += read
        guard read >= VTEPCodec.virtioHeaderLength + 20 else {
          counts.tally.dropped(.badInnerPacket, vni: vni, peer: nil)
          continue
        }
        let header = VirtioHeader(UnsafeRawBufferPointer(rebasing: packet[0..<VTEPCodec.virtioHeaderLength]))
        let ip = UnsafeMutableRawBufferPointer(rebasing: packet[VTEPCodec.virtioHeaderLength..<read])
        guard ip[0] >> 4 == 4 else {
          counts.tally.dropped(ip[0] >> 4 == 6 ? .notIPv4 : .badInnerPacket, vni: vni, peer: nil)
          continue
        }
        guard let peer = network.peer(forInner: VTEPCodec.load32(UnsafeRawBufferPointer(ip), 16)) else {
          counts.tally.dropped(.noRoute, vni: vni, peer: nil)
          continue
        }
        var segmenter: VTEPSegmenter
        do {
          segmenter = try VTEPSegmenter(packet: ip, header: header)
        } catch {
          counts.tally.dropped(error == .unsupported ? .notIPv4 : .badInnerPacket, vni: vni, peer: nil)
          continue
        }
        VTEPCodec.writeFrameHeader(frameHeader, peer: peer, network: network)
        let k = Int(VTEPCodec.flowHash(UnsafeRawBufferPointer(ip)) % UInt32(senders.count))
        let target = batches[k]
        let destination = IPEndpoint(.v4(IPv4Address(peer.underlay)), port)
        while true {
          if target.count == target.capacity { flush(k) }
          guard
            let frames = segmenter.next(
              into: target.buffer(target.count), frameHeader: UnsafeRawBufferPointer(frameHeader),
              maxBytes: gso ? maxGSOBytes : target.slotSize, maxFrames: gso ? maxGSOFrames : 1)
          else { break }
          target.set(
            target.count, length: frames.length, peer: destination,
            segmentSize: frames.count > 1 ? frames.frameSize : 0)
          target.count += 1
          counts.tally.sent(
            vni: vni, peer: peer.underlay, packets: frames.count,
            bytes: frames.length - frames.count * VTEPCodec.innerOffset)
        }
      }
      for k in batches.indices where batches[k].count > 0 { flush(k) }
      counts.merge()
    }
  }

  /// Underlay to TUNs: receive a batch, split GRO buffers, validate, and write the inner packets,
  /// consecutive segments of one TCP flow merged into one super packet per write.
  private static func receive(
    from socket: UDPBatchSocket, snapshot: SnapshotBox, counters: VTEPCounterStore, stop: PacketLoop.Stop
  ) {
    let batch = DatagramBatch(capacity: batchSize, slotSize: 65_536)
    var counts = LoopCounters(store: counters)
    var coalescer = VTEPCoalescer()
    while Self.next(stop, &counts, lastBurst: .max) {  // the receive loop never spins
      while true {
        let n: Int
        do { n = try socket.receive(into: batch, nonBlocking: true) } catch { break }
        if n == 0 { break }
        let view = snapshot.state.withLock { $0 }
        var lookups = Lookups()  // per batch: the view may change between batches
        for i in 0..<n {
          guard case .v4(let source)? = batch.peer(i)?.address else { continue }
          let bytes = batch.buffer(i)
          let count = batch.length(i)
          var offset = 0
          while offset < count {
            let rest = UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<count])
            let length = VTEPCodec.datagramLength(
              UnsafeRawBufferPointer(rest), segmentSize: batch.segmentSize(i))
            Self.deliver(
              UnsafeMutableRawBufferPointer(rebasing: rest[..<length]), source: source.value,
              segmentSize: batch.segmentSize(i), view: view, lookups: &lookups, coalescer: &coalescer,
              tally: &counts.tally)
            offset += length
          }
        }
        Self.flush(&coalescer, view: view, tally: &counts.tally)
        counts.names = view.names
        counts.merge()
        if n < batch.capacity { break }
      }
    }
  }

  /// Waits for the loop's next burst (true) or its end (false), handing pending counts over when
  /// the loop falls idle or ends. Only after a small burst (`lastBurst` bytes) does the wait spin
  /// first: request and response traffic gains from it, while a bulk transfer keeps its loops
  /// busy anyway and needs the CPU for the other stages of its pipeline.
  private static func next(_ stop: PacketLoop.Stop, _ counts: inout LoopCounters, lastBurst: Int) -> Bool {
    var spinning = lastBurst <= spinBurstLimit
    while true {
      defer { spinning = false }
      switch stop.wait(milliseconds: counts.pollTimeout, spinning: spinning) {
      case .ready: return true
      case .idle: counts.merge(force: true)
      case .stop:
        counts.merge(force: true)
        return false
      }
    }
  }

  /// Decapsulates one datagram and hands its inner packet to the coalescer, or writes it alone
  /// (behind a virtio_net_hdr written in the datagram's own headroom) to its network's TUN.
  @inline(__always)
  static func deliver(
    _ datagram: UnsafeMutableRawBufferPointer, source: UInt32, segmentSize: Int, view: Snapshot,
    lookups: inout Lookups, coalescer: inout VTEPCoalescer, tally: inout VTEPTally
  ) {
    switch VTEPCodec.decapsulate(
      UnsafeRawBufferPointer(datagram), source: source, table: view.table, cache: &lookups.codec)
    {
    case .drop(let reason, let vni):
      tally.dropped(reason, vni: vni, peer: source)
    case .deliver(let vni, let peer, let length):
      if lookups.vni != vni {
        lookups.vni = vni
        lookups.tun = view.tuns[vni]
        lookups.mtu = view.table.networks[vni]?.mtu
      }
      guard let tun = lookups.tun, let mtu = lookups.mtu else {
        tally.dropped(.unknownVNI, vni: vni, peer: source)
        return
      }
      tally.received(vni: vni, peer: peer.underlay, bytes: length)
      if coalescer.append(datagram, length: length, vni: vni, mtu: mtu) { return }
      if coalescer.count > 0 {
        Self.flush(&coalescer, view: view, tally: &tally)
        if coalescer.append(datagram, length: length, vni: vni, mtu: mtu) { return }
      }
      guard VTEPCodec.writeVirtioHeader(datagram, length: length, mtu: mtu, segmentSize: segmentSize) else {
        tally.dropped(.badInnerPacket, vni: vni, peer: source)
        return
      }
      let start = VTEPCodec.innerOffset - VTEPCodec.virtioHeaderLength
      do {
        try tun.write(UnsafeRawBufferPointer(rebasing: datagram[start..<(VTEPCodec.innerOffset + length)]))
      } catch {
        tally.dropped(.ioError, vni: vni, peer: source)
      }
    }
  }

  /// What the receive loop looked up for the last datagram, kept for the next ones of the same
  /// batch (a GRO train comes from one peer on one network).
  struct Lookups {
    var codec = VTEPCodec.LookupCache()
    var vni = UInt32.max
    var tun: TunDevice?
    var mtu: Int?
  }

  /// Writes the coalescer's group, if any, to its network's TUN as one packet.
  static func flush(_ coalescer: inout VTEPCoalescer, view: Snapshot, tally: inout VTEPTally) {
    guard coalescer.count > 0 else { return }
    let vni = coalescer.vni
    let vectors = coalescer.finish()
    do {
      try view.tuns[vni]?.write(vectors: vectors)
    } catch {
      tally.dropped(.ioError, vni: vni, peer: nil)
    }
  }

  /// Reads and discards whatever a TUN holds (its network is being removed).
  private static func drain(_ tun: TunDevice) {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
    defer { scratch.deallocate() }
    while (try? tun.read(into: scratch)) != nil {}
  }
}
