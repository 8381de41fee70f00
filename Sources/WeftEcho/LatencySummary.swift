/// Latencies of a run and their percentiles (nearest rank), in microseconds.
public struct LatencySummary: Codable, Sendable, Hashable {
  /// How many samples.
  public var count: Int
  /// The median.
  public var p50: Double
  /// The 90th percentile.
  public var p90: Double
  /// The 99th percentile.
  public var p99: Double
  /// The largest sample.
  public var max: Double

  /// Summarises samples given in nanoseconds.
  public init(nanoseconds samples: [UInt64]) {
    let sorted = samples.sorted()
    self.count = sorted.count
    func rank(_ p: Double) -> Double {
      guard !sorted.isEmpty else { return 0 }
      let index = Swift.max(0, Swift.min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1))
      return Double(sorted[index]) / 1_000
    }
    self.p50 = rank(0.50)
    self.p90 = rank(0.90)
    self.p99 = rank(0.99)
    self.max = sorted.last.map { Double($0) / 1_000 } ?? 0
  }
}
