import NIOCore

/// The flow identity of an Ethernet frame, as used to pick an outer UDP source port.
public enum FlowKey: Hashable, Sendable {
  /// An IP flow. Ports are zero unless the protocol is TCP, UDP or SCTP and the packet is not
  /// a fragment (so every fragment of a datagram maps alike).
  case ip(
    source: IPAddress, destination: IPAddress, protocol: IPProtocol, sourcePort: UInt16,
    destinationPort: UInt16)
  /// A non-IP (or undecodable IP) frame: its MAC addresses and EtherType.
  case link(source: MACAddress, destination: MACAddress, etherType: EtherType)

  /// Extracts the key from an Ethernet frame. Never fails: undecodable input falls back to the
  /// link-layer fields, and a frame too short even for those yields zero fields.
  public init(frame: ByteBuffer) {
    guard let eth = try? EthernetFrame(decoding: frame) else {
      self = .link(source: .zero, destination: .zero, etherType: EtherType(0))
      return
    }
    let fallback = FlowKey.link(source: eth.source, destination: eth.destination, etherType: eth.etherType)
    guard eth.etherType == .ipv4 || eth.etherType == .ipv6,
      let ip = try? IPPacket(decoding: eth.payload, verifyChecksum: false)
    else {
      self = fallback
      return
    }
    var sport: UInt16 = 0
    var dport: UInt16 = 0
    let proto = ip.upperLayerProtocol
    if proto == .tcp || proto == .udp || proto == .sctp, !ip.isFragment {
      let p = ip.payload
      if let s = p.getInteger(at: p.readerIndex, as: UInt16.self),
        let d = p.getInteger(at: p.readerIndex + 2, as: UInt16.self)
      {
        sport = s
        dport = d
      }
    }
    self = .ip(
      source: ip.source, destination: ip.destination, protocol: proto, sourcePort: sport,
      destinationPort: dport)
  }

  /// A deterministic 64-bit hash of the key (stable across processes and runs, unlike
  /// `Hasher`), perturbed by `seed`.
  public func hash(seed: UInt64 = 0) -> UInt64 {
    var h = FlowMixer(seed: seed)
    switch self {
    case .ip(let s, let d, let p, let sp, let dp):
      for a in [s, d] {
        switch a {
        case .v4(let v): h.mix(UInt64(v.value))
        case .v6(let v):
          h.mix(v.high)
          h.mix(v.low)
        }
      }
      h.mix(UInt64(p.rawValue) << 32 | UInt64(sp) << 16 | UInt64(dp))
    case .link(let s, let d, let t):
      h.mix(s.value48)
      h.mix(d.value48)
      h.mix(UInt64(t.rawValue) | 1 << 63)
    }
    return h.finish()
  }
}

/// Chooses the outer UDP source port of an encapsulated frame from its inner flow (RFC 7348 §5:
/// a hash of the inner headers, in the dynamic range), so one flow always takes one ECMP path.
public enum FlowHash {
  /// The ports chosen from: the IANA dynamic/private range.
  public static let portRange: ClosedRange<UInt16> = 49152...65535

  /// The source port for `innerFrame`: the same flow always maps to the same port.
  public static func sourcePort(innerFrame: ByteBuffer, seed: UInt64 = 0) -> UInt16 {
    self.sourcePort(for: FlowKey(frame: innerFrame), seed: seed)
  }

  /// The source port for a flow key.
  public static func sourcePort(for key: FlowKey, seed: UInt64 = 0) -> UInt16 {
    let span = UInt64(self.portRange.upperBound - self.portRange.lowerBound) + 1
    return self.portRange.lowerBound + UInt16(truncatingIfNeeded: (key.hash(seed: seed) >> 32) % span)
  }
}

/// A small multiply-xorshift mixer with a MurmurHash3-style finalizer.
struct FlowMixer {
  private var state: UInt64

  init(seed: UInt64) { self.state = seed ^ 0x243F_6A88_85A3_08D3 }

  mutating func mix(_ word: UInt64) {
    self.state = (self.state ^ word) &* 0x9E37_79B9_7F4A_7C15
    self.state ^= self.state >> 29
  }

  func finish() -> UInt64 {
    var x = self.state
    x ^= x >> 33
    x = x &* 0xFF51_AFD7_ED55_8CCD
    x ^= x >> 33
    x = x &* 0xC4CE_B9FE_1A85_EC53
    x ^= x >> 33
    return x
  }
}
