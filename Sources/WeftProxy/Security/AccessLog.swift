import FoundationEssentials
import Synchronization

/// Logs access-policy denials to the sidecar's output, at most ten a second (a flood of refused
/// requests must not become a flood of log lines); the metrics count them all.
enum AccessLog {
  private static let bucket = Mutex(TokenBucket(perSecond: 10, capacity: 10))

  static func denied(service: String, decision: AccessDecision) {
    let now = UInt64(MonotonicClock.nanoseconds())
    guard Self.bucket.withLock({ $0.take(now: now) == nil }) else { return }
    print("weft proxy: access to \(service) denied: \(decision.reason)")
  }
}
