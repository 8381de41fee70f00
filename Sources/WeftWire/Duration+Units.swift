extension Duration {
  /// The duration in whole nanoseconds (saturating at the Int64 range: about 292 years).
  public var totalNanoseconds: Int64 {
    let (seconds, attoseconds) = self.components
    let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    guard !overflow else { return seconds < 0 ? .min : .max }
    return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow
      ? (seconds < 0 ? .min : .max) : scaled + attoseconds / 1_000_000_000
  }

  /// The duration in milliseconds, with fractions.
  public var totalMilliseconds: Double {
    Double(self.components.seconds) * 1000 + Double(self.components.attoseconds) / 1e15
  }
}
