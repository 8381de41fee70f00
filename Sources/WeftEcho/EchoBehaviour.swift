import Synchronization

/// How an echo server answers: the name it answers with, added latency, and a share of requests
/// to fail. Changed at run time with `PUT /_weft/echo` (the same fields as JSON), so a test can
/// make one replica slow or failing while traffic flows.
public struct EchoBehaviour: Codable, Sendable, Hashable {
  /// The name in every answer (the workload's name).
  public var name: String
  /// Added to every answer, in milliseconds.
  public var latencyMilliseconds: Int
  /// The share of requests (0...1) answered with ``failStatus`` instead.
  public var failRatio: Double
  /// The status of a failed answer.
  public var failStatus: Int
  /// False makes `GET /healthz` answer 503 (for health-check tests); absent means healthy.
  public var healthy: Bool?
  /// True makes the HTTP/2 echo refuse every stream (RST_STREAM with REFUSED_STREAM).
  public var refuseStreams: Bool?

  /// Creates a behaviour; by default fast and never failing.
  public init(name: String, latencyMilliseconds: Int = 0, failRatio: Double = 0, failStatus: Int = 503) {
    self.name = name
    self.latencyMilliseconds = latencyMilliseconds
    self.failRatio = failRatio
    self.failStatus = failStatus
  }

  /// The first problem with the values, if any.
  public var problem: String? {
    if self.name.isEmpty { return "name must not be empty" }
    if self.latencyMilliseconds < 0 || self.latencyMilliseconds > 600_000 {
      return "latencyMilliseconds \(self.latencyMilliseconds) is outside 0...600000"
    }
    if !(0...1).contains(self.failRatio) { return "failRatio \(self.failRatio) is outside 0...1" }
    if !(400...599).contains(self.failStatus) {
      return "failStatus \(self.failStatus) is not a 4xx or 5xx status"
    }
    return nil
  }
}

/// The behaviour shared by every port of one server, changed at run time.
public final class EchoBehaviourBox: Sendable {
  private let value: Mutex<EchoBehaviour>
  private let answered = Atomic<Int>(0)

  /// Requests answered (or being answered) so far.
  var served: Int { self.answered.load(ordering: .relaxed) }

  /// Counts one request.
  func countServed() { self.answered.add(1, ordering: .relaxed) }

  /// Holds `behaviour` until it is changed.
  public init(_ behaviour: EchoBehaviour) { self.value = Mutex(behaviour) }

  /// The behaviour now.
  public var current: EchoBehaviour {
    get { self.value.withLock { $0 } }
    set { self.value.withLock { $0 = newValue } }
  }
}
