import Foundation
import WeftIdentity

/// Everything the API needs to authenticate callers and issue control-plane certificates.
public struct ControlAuth: Sendable {
  /// Tokens and issued certificates.
  public let registry: AuthRegistry
  /// The control plane's CA (nil: no certificates; tokens only, as in plain-HTTP tests).
  public let pki: ControlPlanePKI?
  /// How long a host's or user's client certificate lasts, in seconds.
  public let clientCertificateLifetime: TimeInterval
  let guardian: AuthGuard

  /// Creates the auth state; `log` gets one line per refused credential (at most 10 a second).
  public init(
    registry: AuthRegistry, pki: ControlPlanePKI?, clientCertificateLifetime: TimeInterval = 7 * 86_400,
    limiter: FailureLimiter = FailureLimiter(), log: @escaping @Sendable (String) -> Void = { print($0) }
  ) {
    self.registry = registry
    self.pki = pki
    self.clientCertificateLifetime = clientCertificateLifetime
    self.guardian = AuthGuard(limiter: limiter, log: log)
  }

  /// An in-memory registry accepting one operator token and no certificates.
  public static func token(_ token: String) -> ControlAuth {
    ControlAuth(registry: try! AuthRegistry(path: nil, operatorTokens: [token]), pki: nil)
  }
}

/// Counts failed authentications per source, refuses sources that fail too often, and logs
/// failures without letting a flood of them flood the log.
actor AuthGuard {
  private var limiter: FailureLimiter
  private let log: @Sendable (String) -> Void
  private var second: Int = 0
  private var linesThisSecond = 0
  private var suppressed = 0

  init(limiter: FailureLimiter, log: @escaping @Sendable (String) -> Void) {
    self.limiter = limiter
    self.log = log
  }

  /// Seconds `source` must wait, or nil.
  func lockedOut(_ source: String) -> Double? {
    self.limiter.lockedOut(source, now: Date().timeIntervalSince1970)
  }

  /// Records and logs a failure.
  func failed(_ source: String, _ what: String) {
    let now = Date().timeIntervalSince1970
    self.limiter.fail(source, now: now)
    let s = Int(now)
    if s != self.second {
      if self.suppressed > 0 { self.log("auth: \(self.suppressed) more failed authentication(s) not logged") }
      self.second = s
      self.linesThisSecond = 0
      self.suppressed = 0
    }
    guard self.linesThisSecond < 10 else {
      self.suppressed += 1
      return
    }
    self.linesThisSecond += 1
    self.log("auth: refused \(what) from \(source)")
  }
}
