/// SplitMix64, a tiny, fast pseudo-random generator with a 64-bit state.
///
/// The balancers draw a few random numbers per request; this generator costs a handful of
/// instructions where `SystemRandomNumberGenerator` asks the kernel. Seed it from the system
/// generator in production (``init()``) and from a constant in tests, so that runs repeat.
/// Not cryptographically secure.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  /// Creates a generator whose sequence is fully determined by `seed`.
  public init(seed: UInt64) {
    self.state = seed
  }

  /// Creates a generator seeded from the system's random source.
  public init() {
    var system = SystemRandomNumberGenerator()
    self.state = system.next()
  }

  /// Returns the next value of the sequence.
  public mutating func next() -> UInt64 {
    self.state &+= 0x9E37_79B9_7F4A_7C15
    var z = self.state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
