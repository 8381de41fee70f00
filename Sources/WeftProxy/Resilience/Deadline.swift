/// Deadline propagation between sidecars. A calling sidecar tells the next hop how long the
/// caller will still wait in ``header`` (whole milliseconds left); the destination's sidecar
/// answers 504 when its workload has not begun answering by then, and an application that
/// passes the header on to its own calls lets its sidecar bound those too.
public enum Deadline {
  /// The header carrying the milliseconds left.
  public static let header = "x-weft-timeout-ms"

  /// The milliseconds a header value grants, or nil when it is not a plain non-negative number.
  /// Values above an hour are taken as an hour.
  public static func milliseconds(_ value: String?) -> UInt64? {
    guard let value, !value.isEmpty, value.count <= 12, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
      let number = UInt64(value)
    else { return nil }
    return min(number, 3_600_000)
  }

  /// The header value for `nanoseconds` left: whole milliseconds, rounded down.
  public static func value(nanoseconds: UInt64) -> String { String(nanoseconds / 1_000_000) }

  /// The tighter of two optional bounds.
  public static func tighter(_ a: UInt64?, _ b: UInt64?) -> UInt64? {
    switch (a, b) {
    case (let x?, let y?): min(x, y)
    case (let x?, nil): x
    case (nil, let y): y
    }
  }
}
