/// The consistent-hash ring of `ring_hash`: each endpoint owns `virtualNodesPerWeight × weight`
/// points at stable pseudo-random positions, and a key belongs to the first point at or after its
/// hash (wrapping around).
///
/// An endpoint's points depend only on its own address and weight, so when one joins or leaves,
/// only the keys that fall on its points move. The ring holds unhealthy endpoints too; lookups walk
/// past their points, so a health flap moves only the keys of the endpoint that flapped.
struct HashRing {
  /// Point positions, ascending.
  private(set) var hashes: [UInt64] = []
  /// The table index of the endpoint owning each point, parallel to ``hashes``.
  private(set) var owners: [Int] = []

  init() {}

  /// Builds the ring of `endpoints` (indexed as in the table).
  init(endpoints: [BalancerEndpoint], configuration: RingHashConfiguration) {
    let limit = max(configuration.maximumRingSize, endpoints.count)
    // At most 2^32 × 2^16 before clamping, so none of this overflows.
    let counts = endpoints.map { min(Int($0.weight) * configuration.virtualNodesPerWeight, limit) }
    let wanted = counts.reduce(0, +)
    var points: [(hash: UInt64, address: EndpointAddress, owner: Int)] = []
    points.reserveCapacity(min(wanted, limit))
    for (owner, endpoint) in endpoints.enumerated() {
      var count = counts[owner]
      if wanted > limit { count = max(1, count * limit / wanted) }
      for replica in 0..<count {
        points.append((Self.position(of: endpoint.address, replica: replica), endpoint.address, owner))
      }
    }
    // Ties broken by address, so every proxy builds the same ring whatever the input order.
    points.sort { ($0.hash, $0.address) < ($1.hash, $1.address) }
    self.hashes = points.map(\.hash)
    self.owners = points.map(\.owner)
  }

  /// The position of one virtual node: the ``XXHash64`` of 16 bytes, the address as a 64-bit
  /// big-endian number (`ipv4 << 16 | port`) followed by the replica number, likewise.
  static func position(of address: EndpointAddress, replica: Int) -> UInt64 {
    let key = (
      (UInt64(address.ipv4) << 16 | UInt64(address.port)).bigEndian,
      UInt64(truncatingIfNeeded: replica).bigEndian
    )
    return withUnsafeBytes(of: key) { XXHash64.hash($0) }
  }

  /// The index of the first point at or after `hash`, wrapping to 0 past the end.
  func firstPoint(atOrAfter hash: UInt64) -> Int {
    var low = 0
    var high = self.hashes.count
    while low < high {
      let middle = (low + high) / 2
      if self.hashes[middle] < hash { low = middle + 1 } else { high = middle }
    }
    return low == self.hashes.count ? 0 : low
  }
}
