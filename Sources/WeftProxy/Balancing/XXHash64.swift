/// xxHash64 (XXH64), a fast non-cryptographic 64-bit hash with a fixed, published algorithm.
///
/// Unlike `Hasher`, which is seeded randomly per process, the result is the same on every run
/// and every machine, so two proxies build the same hash ring and a key keeps its endpoint across
/// restarts. Not for anything an attacker may exploit to collide keys on purpose.
public enum XXHash64 {
  private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
  private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
  private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
  private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
  private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

  /// Hashes the bytes of a buffer.
  public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
    let count = bytes.count
    var offset = 0
    var h: UInt64
    if count >= 32 {
      var v1 = seed &+ Self.prime1 &+ Self.prime2
      var v2 = seed &+ Self.prime2
      var v3 = seed
      var v4 = seed &- Self.prime1
      while offset + 32 <= count {
        v1 = Self.round(v1, Self.load64(bytes, offset))
        v2 = Self.round(v2, Self.load64(bytes, offset + 8))
        v3 = Self.round(v3, Self.load64(bytes, offset + 16))
        v4 = Self.round(v4, Self.load64(bytes, offset + 24))
        offset += 32
      }
      h = v1.rotatedLeft(1) &+ v2.rotatedLeft(7) &+ v3.rotatedLeft(12) &+ v4.rotatedLeft(18)
      h = Self.merge(h, v1)
      h = Self.merge(h, v2)
      h = Self.merge(h, v3)
      h = Self.merge(h, v4)
    } else {
      h = seed &+ Self.prime5
    }
    h &+= UInt64(count)
    while offset + 8 <= count {
      h ^= Self.round(0, Self.load64(bytes, offset))
      h = h.rotatedLeft(27) &* Self.prime1 &+ Self.prime4
      offset += 8
    }
    if offset + 4 <= count {
      let word = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
      h ^= UInt64(word) &* Self.prime1
      h = h.rotatedLeft(23) &* Self.prime2 &+ Self.prime3
      offset += 4
    }
    while offset < count {
      h ^= UInt64(bytes[offset]) &* Self.prime5
      h = h.rotatedLeft(11) &* Self.prime1
      offset += 1
    }
    h ^= h >> 33
    h &*= Self.prime2
    h ^= h >> 29
    h &*= Self.prime3
    h ^= h >> 32
    return h
  }

  /// Hashes a sequence of bytes, without copying when it has contiguous storage.
  public static func hash(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0) -> UInt64 {
    if let hash = bytes.withContiguousStorageIfAvailable({
      Self.hash(UnsafeRawBufferPointer($0), seed: seed)
    }) {
      return hash
    }
    return Array(bytes).withUnsafeBytes { Self.hash($0, seed: seed) }
  }

  /// Hashes the UTF-8 bytes of a string.
  public static func hash(_ string: some StringProtocol, seed: UInt64 = 0) -> UInt64 {
    Self.hash(string.utf8, seed: seed)
  }

  @inline(__always)
  private static func load64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
  }

  @inline(__always)
  private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
    (accumulator &+ input &* Self.prime2).rotatedLeft(31) &* Self.prime1
  }

  @inline(__always)
  private static func merge(_ accumulator: UInt64, _ value: UInt64) -> UInt64 {
    (accumulator ^ Self.round(0, value)) &* Self.prime1 &+ Self.prime4
  }
}

extension UInt64 {
  @inline(__always)
  fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
    (self << count) | (self >> (64 &- count))
  }
}
