import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WeftWire

/// What one `weft echo call` run saw.
public struct EchoReport: Codable, Sendable, Hashable {
  /// Requests made.
  public var requests = 0
  /// Answers by status code (as text, so that JSON has an object here).
  public var statuses: [String: Int] = [:]
  /// Successful (2xx) answers by the workload that gave them (`x-weft-workload`).
  public var workloads: [String: Int] = [:]
  /// Requests that got no answer, by error.
  public var errors: [String: Int] = [:]
  /// Latency of the answered requests.
  public var latency = LatencySummary(nanoseconds: [])
  /// Wall time of the run in seconds.
  public var seconds = 0.0

  /// Creates an empty report.
  public init() {}

  /// The text `weft echo call` prints.
  public var text: String {
    var lines = [
      "requests \(self.requests) in \(String(format: "%.2f", self.seconds)) s"
        + " (\(String(format: "%.0f", Double(self.requests) / Swift.max(self.seconds, 1e-9))) per second)"
    ]
    lines.append(
      "statuses "
        + self.statuses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    lines.append(
      "workloads "
        + self.workloads.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    if !self.errors.isEmpty {
      lines.append(
        "errors "
          + self.errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }
    lines.append(
      String(
        format: "latency us p50 %.0f p90 %.0f p99 %.0f max %.0f", self.latency.p50, self.latency.p90,
        self.latency.p99, self.latency.max))
    return lines.joined(separator: "\n") + "\n"
  }
}

/// `weft echo call`: calls a URL a number of times or for a while, with some concurrency, and
/// reports statuses, which workloads answered and latency percentiles.
public struct EchoCaller: Sendable {
  /// The URL.
  public var url: String
  /// How many requests (when no duration is given).
  public var count: Int
  /// Call for this long instead of a count.
  public var duration: Duration?
  /// Requests in flight at once.
  public var concurrency: Int
  /// Extra request headers.
  public var headers: [(String, String)]
  /// Per-request timeout.
  public var timeout: Duration

  /// Creates a caller.
  public init(
    url: String, count: Int = 100, duration: Duration? = nil, concurrency: Int = 1,
    headers: [(String, String)] = [], timeout: Duration = .seconds(10)
  ) {
    self.url = url
    self.count = count
    self.duration = duration
    self.concurrency = concurrency
    self.headers = headers
    self.timeout = timeout
  }

  /// Runs the calls and reports.
  public func run(client: HTTPClient = .shared) async -> EchoReport {
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = self.duration.map { start + $0 }
    let issued = Counter()
    let results = await withTaskGroup(of: Partial.self) { group in
      for _ in 0..<Swift.max(1, self.concurrency) {
        group.addTask {
          var partial = Partial()
          while true {
            if let deadline {
              if clock.now >= deadline { break }
            } else if issued.next() >= self.count {
              break
            }
            await self.once(client: client, clock: clock, into: &partial)
          }
          return partial
        }
      }
      var all = Partial()
      for await p in group { all.merge(p) }
      return all
    }
    var report = results.report
    report.latency = LatencySummary(nanoseconds: results.latencies)
    report.seconds = Double(Self.nanoseconds(clock.now - start)) / 1e9
    return report
  }

  static func nanoseconds(_ d: Duration) -> Int64 { d.totalNanoseconds }

  private func once(client: HTTPClient, clock: ContinuousClock, into partial: inout Partial) async {
    var request = HTTPClientRequest(url: self.url)
    for (name, value) in self.headers { request.headers.add(name: name, value: value) }
    let began = clock.now
    partial.report.requests += 1
    do {
      let response = try await client.execute(request, timeout: .nanoseconds(Self.nanoseconds(self.timeout)))
      _ = try await response.body.collect(upTo: 16 << 20)
      let elapsed = clock.now - began
      partial.latencies.append(UInt64(Self.nanoseconds(elapsed)))
      partial.report.statuses[String(response.status.code), default: 0] += 1
      if (200..<300).contains(response.status.code) {
        let who = response.headers.first(name: "x-weft-workload") ?? "-"
        partial.report.workloads[who, default: 0] += 1
      }
    } catch {
      partial.report.errors[String(describing: type(of: error)) + ": \(error)", default: 0] += 1
    }
  }

  /// One worker's share.
  struct Partial: Sendable {
    var report = EchoReport()
    var latencies: [UInt64] = []

    mutating func merge(_ other: Partial) {
      self.report.requests += other.report.requests
      self.report.statuses.merge(other.report.statuses, uniquingKeysWith: +)
      self.report.workloads.merge(other.report.workloads, uniquingKeysWith: +)
      self.report.errors.merge(other.report.errors, uniquingKeysWith: +)
      self.latencies += other.latencies
    }
  }
}

/// Hands out request numbers to the workers.
final class Counter: Sendable {
  private let value = Mutex(0)
  func next() -> Int {
    self.value.withLock { value in
      defer { value += 1 }
      return value
    }
  }
}
