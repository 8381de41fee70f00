import Testing
import WeftModel

@testable import WeftProxy

@Suite("resilience: outlier detection against a fake clock")
struct OutlierDetectorTests {
  let ms: UInt64 = 1_000_000

  func detector(_ spec: OutlierDetectionSpec, endpoints: [String] = ["a", "b", "c", "d"]) -> OutlierDetector<
    String
  > {
    var d = OutlierDetector<String>(configuration: spec.resolved)
    d.update(endpoints: endpoints)
    return d
  }

  @Test func outcomesAreClassifiedByStatus() {
    #expect(RequestOutcome(status: 200) == .success)
    #expect(RequestOutcome(status: 404) == .success)
    #expect(RequestOutcome(status: 500) == .serverError)
    #expect(RequestOutcome(status: 503) == .gatewayError)
    #expect(RequestOutcome(status: nil) == .gatewayError)
  }

  @Test func consecutiveFailuresEjectExactlyAtTheCount() {
    var d = detector(OutlierDetectionSpec(consecutive5xx: 3, consecutiveGatewayErrors: 0))
    do {
      let result = d.record(.serverError, for: "a", now: 0)
      #expect(!result)
    }
    do {
      let result = d.record(.serverError, for: "a", now: 1)
      #expect(!result)
    }
    do {
      let result = d.record(.success, for: "a", now: 2)
      #expect(!result, "a success starts the count again")
    }
    do {
      let result = d.record(.serverError, for: "a", now: 3)
      #expect(!result)
    }
    do {
      let result = d.record(.gatewayError, for: "a", now: 4)
      #expect(!result)
    }
    do {
      let result = d.record(.serverError, for: "a", now: 5)
      #expect(result, "the third 5xx in a row ejects")
    }
    #expect(d.isEjected("a", now: 6))
    #expect(!d.isEjected("b", now: 6))
  }

  @Test func gatewayErrorsHaveTheirOwnCount() {
    var d = detector(OutlierDetectionSpec(consecutive5xx: 0, consecutiveGatewayErrors: 2))
    do {
      let result = d.record(.gatewayError, for: "a", now: 0)
      #expect(!result)
    }
    do {
      let result = d.record(.serverError, for: "a", now: 1)
      #expect(!result, "a plain 500 breaks a run of gateway errors")
    }
    do {
      let result = d.record(.gatewayError, for: "a", now: 2)
      #expect(!result)
    }
    do {
      let result = d.record(.gatewayError, for: "a", now: 3)
      #expect(result)
    }
  }

  @Test func ejectionsGrowWithEachEjectionAndAreCapped() {
    var d = detector(
      OutlierDetectionSpec(consecutive5xx: 1, baseEjectionMilliseconds: 100, maxEjectionMilliseconds: 250))
    var now: UInt64 = 0
    var lengths: [UInt64] = []
    for _ in 0..<4 {
      do {
        let result = d.record(.serverError, for: "a", now: now)
        #expect(result)
      }
      let until = d.records["a"]!.ejectedUntil!
      lengths.append((until - now) / ms)
      #expect(
        d.isEjected("a", now: until - 1) && !d.isEjected("a", now: until),
        "back exactly when its time is over")
      now = until
    }
    #expect(lengths == [100, 200, 250, 250])
  }

  @Test func theMaximumEjectionPercentIsExactAndRoundsDown() {
    // 4 endpoints at 50%: two at most; at 49%: one; with 3 endpoints at 10%: none.
    var half = detector(OutlierDetectionSpec(consecutive5xx: 1, maxEjectionPercent: 50))
    #expect(half.maximumEjected == 2)
    do {
      let result = half.record(.serverError, for: "a", now: 0)
      #expect(result)
    }
    do {
      let result = half.record(.serverError, for: "b", now: 0)
      #expect(result)
    }
    do {
      let result = half.record(.serverError, for: "c", now: 0)
      #expect(!result, "a third would exceed 50%")
    }
    #expect(half.ejectedCount(now: 1) == 2)
    var less = detector(OutlierDetectionSpec(consecutive5xx: 1, maxEjectionPercent: 49))
    do {
      let result = less.record(.serverError, for: "a", now: 0)
      #expect(result)
    }
    do {
      let result = less.record(.serverError, for: "b", now: 0)
      #expect(!result)
    }
    var few = detector(
      OutlierDetectionSpec(consecutive5xx: 1, maxEjectionPercent: 10), endpoints: ["a", "b", "c"])
    #expect(few.maximumEjected == 0)
    do {
      let result = few.record(.serverError, for: "a", now: 0)
      #expect(!result)
    }
  }

  @Test func failurePercentageIsJudgedPerIntervalWithAMinimumVolume() {
    var d = detector(
      OutlierDetectionSpec(
        consecutive5xx: 0, consecutiveGatewayErrors: 0, intervalMilliseconds: 1000,
        failurePercentageThreshold: 50,
        failurePercentageMinimumRequests: 10))
    // a: 6 of 10 fail (60%); b: 9 of 9 fail but under the volume; c: 4 of 10 (40%).
    for i in 0..<10 { d.record(i < 6 ? .serverError : .success, for: "a", now: 0) }
    for _ in 0..<9 { d.record(.serverError, for: "b", now: 0) }
    for i in 0..<10 { d.record(i < 4 ? .serverError : .success, for: "c", now: 0) }
    do {
      let result = d.tick(now: 999 * ms)
      #expect(result.isEmpty, "not before the interval ends")
    }
    do {
      let result = d.tick(now: 1000 * ms)
      #expect(result == ["a"])
    }
    #expect(d.isEjected("a", now: 1000 * ms) && !d.isEjected("b", now: 1000 * ms))
    #expect(d.records["c"]!.intervalRequests == 0, "the next interval starts from zero")
  }

  @Test func successRateEjectsWhatFallsFarBelowTheOthers() {
    let spec = OutlierDetectionSpec(
      consecutive5xx: 0, consecutiveGatewayErrors: 0, intervalMilliseconds: 1000, successRateStdevFactor: 1.9)
    let endpoints = ["a", "b", "c", "d", "e", "f"]
    // Success out of 100 each: a-e 98-100, f 60. Mean 0.928, deviation 0.147: the bar is 0.649.
    let successes = ["a": 100, "b": 99, "c": 100, "d": 98, "e": 100, "f": 60]
    func run(_ d: inout OutlierDetector<String>, volume: [String: Int] = [:]) -> [String] {
      for key in endpoints {
        let total = volume[key] ?? 100
        for i in 0..<total { d.record(i < successes[key]! ? .success : .serverError, for: key, now: 0) }
      }
      return d.tick(now: 1000 * ms)
    }
    var d = detector(spec, endpoints: endpoints)
    #expect(run(&d) == ["f"])
    #expect(d.records["f"]?.ejections == 1 && !d.isEjected("d", now: 1000 * ms))
    // Under the request volume an endpoint is not judged, and with fewer than the minimum
    // judged endpoints (five by default) nobody is.
    var few = detector(spec, endpoints: endpoints)
    #expect(run(&few, volume: ["a": 99, "b": 99]).isEmpty, "four judged endpoints are too few")
    var quiet = detector(spec, endpoints: endpoints)
    #expect(run(&quiet, volume: ["f": 99]).isEmpty, "f under the volume; the rest are alike")
    // A factor that puts the bar under 0.6 keeps f in.
    var lenient = detector(
      OutlierDetectionSpec(
        consecutive5xx: 0, consecutiveGatewayErrors: 0, intervalMilliseconds: 1000,
        successRateStdevFactor: 2.5),
      endpoints: endpoints)
    #expect(run(&lenient).isEmpty)
  }

  @Test func endpointsThatStayKeepTheirRecords() {
    var d = detector(OutlierDetectionSpec(consecutive5xx: 1))
    d.record(.serverError, for: "a", now: 0)
    d.update(endpoints: ["a", "e"])
    #expect(d.isEjected("a", now: 1) && d.records["e"] != nil && d.records["b"] == nil)
  }

  @Test func badSettingsNameTheField() {
    #expect(OutlierDetectionSpec(maxEjectionPercent: 101).problem?.field == "maxEjectionPercent")
    #expect(
      OutlierDetectionSpec(baseEjectionMilliseconds: 1000, maxEjectionMilliseconds: 10).problem?.field
        == "maxEjectionMilliseconds")
    #expect(OutlierDetectionSpec().problem == nil)
  }
}
