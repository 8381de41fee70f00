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
  /// Datagrams per system call.
  static let batchSize = 64

  let port: UInt16
  let receiver: UDPBatchSocket
  let senders: [UDPBatchSocket]
  let counters = VTEPCounterStore()
  private let snapshot = SnapshotBox()
  private let transmitters = Mutex([UInt32: PacketLoop]())
  private let receiveLoop: PacketLoop
  /// Whether the receive socket hands over GRO-coalesced datagrams.
  let receiveGRO: Bool

  /// Binds the sockets on the underlay address and starts the receive loop.
  init(underlay: IPAddress, port: UInt16) throws {
    self.port = port
    self.receiver = try UDPBatchSocket(bind: IPEndpoint(underlay, port), nonBlocking: true)
    self.senders = try (0..<Self.sendSocketCount).map { _ in try UDPBatchSocket(bind: IPEndpoint(underlay, 0))
    }
    self.receiver.setBufferSizes(8 << 20)
    for sender in self.senders { sender.setBufferSizes(4 << 20) }
    self.receiveGRO = self.receiver.enableGRO()
    let receiver = self.receiver
    let snapshot = self.snapshot
    let counters = self.counters
    self.receiveLoop = try PacketLoop(name: "weft-vtep-rx", descriptor: receiver.fileDescriptor) { stop in
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
        loops[vni] = try PacketLoop(name: "weft-vtep-tx\(vni)", descriptor: tun.fileDescriptor, tun: tun) {
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

  /// TUN to underlay: read a burst of packets, encapsulate each in place, send per socket.
  private static func transmit(
    vni: UInt32, tun: TunDevice, senders: [UDPBatchSocket], port: UInt16, snapshot: SnapshotBox,
    counters: VTEPCounterStore, stop: PacketLoop.Stop
  ) {
    // Without TSO announced the TUN hands over packets of at most its MTU: room for jumbo frames.
    let slotSize = VTEPCodec.innerOffset + 9_216
    let batches = senders.map { _ in DatagramBatch(capacity: batchSize, slotSize: slotSize) }
    var counts = LoopCounters(store: counters)
    func flush(_ k: Int) {
      let batch = batches[k]
      var done = 0
      while done < batch.count {
        do {
          done += try senders[k].send(batch, from: done)
        } catch {
          counts.tally.dropped(.ioError, vni: vni, peer: nil)
          done += 1  // skip the datagram the kernel refused; send the rest
        }
      }
      batch.count = 0
    }
    while Self.next(stop, &counts) {
      let view = snapshot.state.withLock { $0 }
      counts.names = view.names
      guard let network = view.table.networks[vni] else {
        Self.drain(tun)
        continue
      }
      var last = 0
      for _ in 0..<(batchSize * 4) {
        // Read straight into the next slot of the batch the last packet went to, and move the
        // packet only when its flow belongs to another socket: most bursts are one flow. A batch
        // is flushed as soon as it fills, so that slot is always free.
        let slot = batches[last].buffer(batches[last].count)
        let read: Int?
        do {
          // The TUN prefixes a virtio_net_hdr: with no offloads announced it is always empty
          // (complete checksums, no GSO), so it lands in the headroom and is overwritten.
          read = try tun.read(
            into: UnsafeMutableRawBufferPointer(
              rebasing: slot[(VTEPCodec.innerOffset - VTEPCodec.virtioHeaderLength)...]))
        } catch {
          counts.tally.dropped(.ioError, vni: vni, peer: nil)
          break
        }
        guard let read, read > VTEPCodec.virtioHeaderLength else { break }
        let length = read - VTEPCodec.virtioHeaderLength
        switch VTEPCodec.encapsulate(slot, length: length, network: network) {
        case .drop(let reason):
          counts.tally.dropped(reason, vni: vni, peer: nil)
        case .send(let peer, let frameLength, let flow):
          let k = Int(flow % UInt32(senders.count))
          let target = batches[k]
          if k != last {
            target.buffer(target.count).baseAddress!.copyMemory(
              from: slot.baseAddress!, byteCount: frameLength)
          }
          target.set(
            target.count, length: frameLength, peer: IPEndpoint(.v4(IPv4Address(peer.underlay)), port))
          target.count += 1
          counts.tally.sent(vni: vni, peer: peer.underlay, bytes: length)
          if target.count == target.capacity { flush(k) }
          last = k
        }
      }
      for k in batches.indices where batches[k].count > 0 { flush(k) }
      counts.merge()
    }
  }

  /// Underlay to TUNs: receive a batch, split GRO buffers, validate, write each inner packet.
  private static func receive(
    from socket: UDPBatchSocket, snapshot: SnapshotBox, counters: VTEPCounterStore, stop: PacketLoop.Stop
  ) {
    let batch = DatagramBatch(capacity: batchSize, slotSize: 65_536)
    var counts = LoopCounters(store: counters)
    while Self.next(stop, &counts) {
      while true {
        let n: Int
        do { n = try socket.receive(into: batch, nonBlocking: true) } catch { break }
        if n == 0 { break }
        let view = snapshot.state.withLock { $0 }
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
              segmentSize: batch.segmentSize(i), view: view, tally: &counts.tally)
            offset += length
          }
        }
        counts.names = view.names
        counts.merge()
        if n < batch.capacity { break }
      }
    }
  }

  /// Waits for the loop's next burst (true) or its end (false), handing pending counts over when
  /// the loop falls idle or ends.
  private static func next(_ stop: PacketLoop.Stop, _ counts: inout LoopCounters) -> Bool {
    while true {
      switch stop.wait(milliseconds: counts.pollTimeout) {
      case .ready: return true
      case .idle: counts.merge(force: true)
      case .stop:
        counts.merge(force: true)
        return false
      }
    }
  }

  /// Decapsulates one datagram and writes its inner packet, behind a virtio_net_hdr written in
  /// the datagram's own headroom, to its network's TUN.
  @inline(__always)
  static func deliver(
    _ datagram: UnsafeMutableRawBufferPointer, source: UInt32, segmentSize: Int, view: Snapshot,
    tally: inout VTEPTally
  ) {
    switch VTEPCodec.decapsulate(UnsafeRawBufferPointer(datagram), source: source, table: view.table) {
    case .drop(let reason, let vni):
      tally.dropped(reason, vni: vni, peer: source)
    case .deliver(let vni, let peer, let length):
      guard let tun = view.tuns[vni], let mtu = view.table.networks[vni]?.mtu else {
        tally.dropped(.unknownVNI, vni: vni, peer: source)
        return
      }
      guard VTEPCodec.writeVirtioHeader(datagram, length: length, mtu: mtu, segmentSize: segmentSize) else {
        tally.dropped(.badInnerPacket, vni: vni, peer: source)
        return
      }
      let start = VTEPCodec.innerOffset - VTEPCodec.virtioHeaderLength
      do {
        try tun.write(UnsafeRawBufferPointer(rebasing: datagram[start..<(VTEPCodec.innerOffset + length)]))
        tally.received(vni: vni, peer: peer.underlay, bytes: length)
      } catch {
        tally.dropped(.ioError, vni: vni, peer: source)
      }
    }
  }

  /// Reads and discards whatever a TUN holds (its network is being removed).
  private static func drain(_ tun: TunDevice) {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
    defer { scratch.deallocate() }
    while (try? tun.read(into: scratch)) != nil {}
  }
}
