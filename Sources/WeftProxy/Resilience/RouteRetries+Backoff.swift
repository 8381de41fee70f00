import WeftModel

extension RouteRetries {
  /// The backoff its settings describe.
  var backoff: Backoff {
    Backoff(
      baseNanos: UInt64(self.backoffBaseMilliseconds ?? 25) * 1_000_000,
      maximumNanos: UInt64(self.backoffMaxMilliseconds ?? 250) * 1_000_000)
  }
}
