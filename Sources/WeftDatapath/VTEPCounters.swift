import Synchronization
import WeftWire

/// Packets and bytes in each direction, and drops by reason.
public struct TrafficCounters: Codable, Sendable, Hashable {
  /// Packets received from the underlay and delivered (or, for a peer, received from it).
  public var rxPackets: UInt64 = 0
  /// Their inner bytes.
  public var rxBytes: UInt64 = 0
  /// Packets encapsulated and sent.
  public var txPackets: UInt64 = 0
  /// Their inner bytes.
  public var txBytes: UInt64 = 0
  /// Dropped packets by ``VTEPDropReason`` raw value.
  public var drops: [String: UInt64] = [:]

  /// Zero counters.
  public init() {}

  /// All drops.
  public var dropped: UInt64 { self.drops.values.reduce(0, +) }

  mutating func add(_ other: TrafficCounters) {
    self.rxPackets &+= other.rxPackets
    self.rxBytes &+= other.rxBytes
    self.txPackets &+= other.txPackets
    self.txBytes &+= other.txBytes
    for (k, v) in other.drops { self.drops[k, default: 0] &+= v }
  }
}

/// What the userspace VTEP has counted since it started: per network (by name), per peer (by
/// underlay address, members and strangers alike), and drops by reason over all.
public struct VTEPCounters: Codable, Sendable, Hashable {
  /// Per network name.
  public var networks: [String: TrafficCounters] = [:]
  /// Per sender or receiver underlay address.
  public var peers: [String: TrafficCounters] = [:]
  /// Drops by reason over every network and peer.
  public var drops: [String: UInt64] = [:]

  /// Zero counters.
  public init() {}
}

/// Counts one packet loop's work without locks and hands it to the shared counters once per
/// batch. Keys are numeric on the hot path (VNI, IPv4); names are attached when merged.
struct VTEPTally {
  var networks: [UInt32: TrafficCounters] = [:]
  var peers: [UInt32: TrafficCounters] = [:]
  var drops: [VTEPDropReason: UInt64] = [:]
  /// Packets counted since the last merge.
  var events = 0
  var isEmpty: Bool { self.events == 0 }

  mutating func received(vni: UInt32, peer: UInt32, bytes: Int) {
    // One lookup per table, the entry changed in place (this runs for every datagram).
    func count(_ c: inout TrafficCounters) {
      c.rxPackets &+= 1
      c.rxBytes &+= UInt64(bytes)
    }
    count(&self.networks[vni, default: TrafficCounters()])
    count(&self.peers[peer, default: TrafficCounters()])
    self.events += 1
  }

  mutating func sent(vni: UInt32, peer: UInt32, packets: Int = 1, bytes: Int) {
    func count(_ c: inout TrafficCounters) {
      c.txPackets &+= UInt64(packets)
      c.txBytes &+= UInt64(bytes)
    }
    count(&self.networks[vni, default: TrafficCounters()])
    count(&self.peers[peer, default: TrafficCounters()])
    self.events += packets
  }

  mutating func dropped(_ reason: VTEPDropReason, vni: UInt32?, peer: UInt32?) {
    if let vni { self.networks[vni, default: TrafficCounters()].drops[reason.rawValue, default: 0] &+= 1 }
    if let peer { self.peers[peer, default: TrafficCounters()].drops[reason.rawValue, default: 0] &+= 1 }
    self.drops[reason, default: 0] &+= 1
    self.events += 1
  }
}

/// One packet loop's counts and the rule for handing them over: after ``mergeEvery`` packets or
/// ``mergeInterval``, whichever comes first, and whenever the loop falls idle. Readers see counts
/// at most that old, and a burst of one packet does not pay for a merge (a lock and the peers'
/// address strings).
struct LoopCounters {
  static let mergeEvery = 4096
  static let mergeMilliseconds: Int32 = 20
  static let mergeInterval = Duration.milliseconds(Int64(mergeMilliseconds))

  var tally = VTEPTally()
  /// Network names by VNI, from the loop's latest snapshot.
  var names: [UInt32: String] = [:]
  let store: VTEPCounterStore
  private var lastMerge = ContinuousClock.now

  init(store: VTEPCounterStore) { self.store = store }

  /// How long the loop may block: without limit while nothing is pending, else until a merge.
  var pollTimeout: Int32 { self.tally.isEmpty ? -1 : Self.mergeMilliseconds }

  /// Hands the counts over when due (or now, with `force`).
  mutating func merge(force: Bool = false) {
    guard !self.tally.isEmpty else { return }
    let now = ContinuousClock.now
    guard force || self.tally.events >= Self.mergeEvery || now - self.lastMerge >= Self.mergeInterval else {
      return
    }
    self.store.merge(&self.tally, names: self.names)
    self.lastMerge = now
  }
}

/// The shared counters the packet loops merge into and the agent reads.
final class VTEPCounterStore: Sendable {
  /// Peers tracked by address at most; strangers beyond it are counted under "other".
  static let peerLimit = 1024
  private let state = Mutex(VTEPCounters())

  func merge(_ tally: inout VTEPTally, names: [UInt32: String]) {
    guard !tally.isEmpty else { return }
    self.state.withLock { c in
      for (reason, n) in tally.drops { c.drops[reason.rawValue, default: 0] &+= n }
      for (vni, t) in tally.networks {
        c.networks[names[vni] ?? "vni-\(vni)", default: TrafficCounters()].add(t)
      }
      for (address, t) in tally.peers {
        var key = IPv4Address(address).description
        if c.peers[key] == nil && c.peers.count >= Self.peerLimit { key = "other" }
        c.peers[key, default: TrafficCounters()].add(t)
      }
    }
    tally = VTEPTally()
  }

  var snapshot: VTEPCounters { self.state.withLock { $0 } }

}
