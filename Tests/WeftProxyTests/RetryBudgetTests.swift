import Testing
import WeftModel

@testable import WeftProxy

@Suite("resilience: retry budget and backoff")
struct RetryBudgetTests {
  @Test func eachRequestEarnsItsShareOfARetry() {
    var budget = RetryBudget(ratio: 0.2, minimumPerSecond: 0, maximumBalance: 100)
    var granted = 0
    for _ in 0..<100 {
      budget.requestStarted(now: 0)
      if budget.tryRetry(now: 0) { granted += 1 }
    }
    #expect(granted == 20, "one retry per five requests")
    #expect(budget.exhausted == 80)
  }

  @Test func timeEarnsTheMinimumAndSavingsAreCapped() {
    var budget = RetryBudget(ratio: 0, minimumPerSecond: 10, maximumBalance: 5)
    budget.requestStarted(now: 0)
    var saved = 0
    while budget.tryRetry(now: 0) { saved += 1 }
    #expect(saved == 5, "a new budget starts with a second's minimum, capped")
    // 0.3 s earns 3; an hour earns no more than the cap of 5.
    var early = 0
    while budget.tryRetry(now: 300_000_000) { early += 1 }
    #expect(early == 3)
    var later = 0
    while budget.tryRetry(now: 3_600_000_000_000) { later += 1 }
    #expect(later == 5)
  }

  @Test func withEverythingFailingUpstreamLoadStaysUnderOnePlusTheRatio() {
    // 50 client requests every 10 ms for 10 s; every attempt fails and asks for a retry, up to
    // 3 attempts a request. Attempts stay under (1 + ratio) x requests + minimum x seconds + cap.
    var budget = RetryBudget(ratio: 0.2, minimumPerSecond: 10, maximumBalance: 100)
    var client = 0
    var upstream = 0
    var retrying: [Int] = []  // attempts made so far by each request waiting to retry
    for tick in 0..<1000 {
      let now = UInt64(tick) * 10_000_000
      var attempts = retrying
      for _ in 0..<50 {
        budget.requestStarted(now: now)
        client += 1
        attempts.append(0)
      }
      upstream += attempts.count
      retrying = attempts.compactMap { made in made + 1 < 3 && budget.tryRetry(now: now) ? made + 1 : nil }
    }
    let bound = 1.2 * Double(client) + 10 * 10 + 100
    #expect(Double(upstream) <= bound, "\(upstream) attempts for \(client) requests")
    #expect(Double(upstream) > 1.15 * Double(client), "the budget was used: \(upstream) for \(client)")
  }

  @Test func backoffBoundsDoubleAndAreCapped() {
    let backoff = Backoff(baseNanos: 25_000_000, maximumNanos: 250_000_000)
    #expect((1...6).map { backoff.bound(attempt: $0) / 1_000_000 } == [25, 50, 100, 200, 250, 250])
    #expect(backoff.bound(attempt: 200) == 250_000_000)
    var random = SplitMix64(seed: 7)
    for attempt in 1...8 {
      for _ in 0..<100 {
        #expect(backoff.delay(attempt: attempt, using: &random) <= backoff.bound(attempt: attempt))
      }
    }
    // Full jitter: the waits spread over the whole range, not bunched at its top.
    let waits = (0..<1000).map { _ in backoff.delay(attempt: 4, using: &random) }
    #expect(waits.min()! < 20_000_000 && waits.max()! > 180_000_000)
  }
}

@Suite("resilience: what a retry policy retries")
struct RouteRetriesPolicyTests {
  @Test func conditionsStatusesAndMethods() {
    let byDefault = RouteRetries()
    #expect(byDefault.effectiveAttempts == 2)
    #expect(
      byDefault.retries(status: 503) && !byDefault.retries(status: 500) && !byDefault.retries(status: 404))
    #expect(byDefault.retriesFailure(connected: false) && byDefault.retriesFailure(connected: true))
    #expect(byDefault.retriesFailure(connected: true, timedOut: true))
    #expect(
      byDefault.allows(method: "GET") && byDefault.allows(method: "PUT") && !byDefault.allows(method: "POST"))
    let narrow = RouteRetries(
      retryOn: [.retriableStatusCodes], retriableStatusCodes: [409], retryNonIdempotent: true)
    #expect(narrow.retries(status: 409) && !narrow.retries(status: 503))
    #expect(
      !narrow.retriesFailure(connected: false) && !narrow.retriesFailure(connected: true, timedOut: true))
    #expect(narrow.allows(method: "POST"))
    #expect(!narrow.retriesFailure(connected: true, refused: true), "refused-stream is not in its list")
    let refusedOnly = RouteRetries(retryOn: [.refusedStream])
    #expect(refusedOnly.retriesFailure(connected: true, refused: true))
    #expect(!refusedOnly.retriesFailure(connected: true) && !refusedOnly.retriesFailure(connected: false))
    #expect(byDefault.conditions.contains(.refusedStream))
    let any5xx = RouteRetries(retryOn: [.serverError])
    #expect(any5xx.retries(status: 500) && any5xx.retriesFailure(connected: true))
    #expect(
      RouteRetries(backoffBaseMilliseconds: 10, backoffMaxMilliseconds: 40).backoff.bound(attempt: 3)
        == 40_000_000)
  }
}
