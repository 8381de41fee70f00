import WeftModel

/// One balancer's endpoints (a service's, or one route backend's) with what decides which get
/// traffic: the agents' health checks, passive outlier detection, and the panic threshold.
struct EndpointPool {
  /// The balancer.
  var balancer: any LoadBalancer
  /// The endpoints (IPv4) and whether their health check passes.
  var endpoints: [(address: UInt32, healthy: Bool)]
  /// Outlier detection, when the service asks for it.
  var detector: OutlierDetector<UInt32>?
  /// When the detector next needs a tick.
  var nextCheck: UInt64?
  /// True while too few endpoints are usable and all of them get traffic.
  var panic = false

  /// Sets endpoints and detection; the balancer and detector keep what they know of endpoints
  /// that stay.
  mutating func update(
    endpoints: [(address: UInt32, healthy: Bool)], outlierDetection: OutlierDetectionSpec?, now: UInt64
  ) {
    self.endpoints = endpoints
    if let spec = outlierDetection {
      let configuration = spec.resolved
      if self.detector?.configuration != configuration {
        self.detector = OutlierDetector(configuration: configuration)
      }
      self.detector!.update(endpoints: endpoints.map(\.address))
    } else {
      self.detector = nil
    }
    self.refresh(now: now)
  }

  /// Records a finished request's outcome; true when that changed who gets traffic.
  mutating func record(_ outcome: RequestOutcome, for address: UInt32, now: UInt64) {
    guard self.detector != nil else { return }
    if self.detector!.record(outcome, for: address, now: now) { self.refresh(now: now) }
  }

  /// Lets the detector judge an ended interval and return endpoints whose ejection is over.
  mutating func tickIfDue(now: UInt64) {
    guard self.detector != nil, let due = self.nextCheck, now >= due else { return }
    self.detector!.tick(now: now)
    self.refresh(now: now)
  }

  /// Tells the balancer who gets traffic: healthy and not ejected; or everyone, in panic mode.
  mutating func refresh(now: UInt64) {
    let detector = self.detector
    let usable = self.endpoints.map { $0.healthy && !(detector?.isEjected($0.address, now: now) ?? false) }
    let threshold = self.detector?.configuration.panicThresholdPercent ?? 0
    let panic =
      threshold > 0 && !self.endpoints.isEmpty
      && usable.count(where: { $0 }) * 100 < threshold * self.endpoints.count
    self.panic = panic
    self.balancer.update(
      endpoints: zip(self.endpoints, usable).map { endpoint, usable in
        BalancerEndpoint(EndpointAddress(ipv4: endpoint.address, port: 0), isHealthy: panic || usable)
      })
    self.nextCheck = self.detector?.nextDeadline(now: now)
  }

  /// Whether `address` is ejected now.
  func isEjected(_ address: UInt32, now: UInt64) -> Bool {
    self.detector?.isEjected(address, now: now) ?? false
  }
}
