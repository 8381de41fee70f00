import Synchronization
import WeftIdentity
import WeftModel
import WeftWire

/// Where an outbound connection or request goes.
public enum OutboundDecision: Sendable, Hashable {
  /// To an endpoint of a service; end it with ``ServiceTable/finish(_:now:success:)``.
  case service(Upstream)
  /// A service (or the route's chosen subset) with no healthy endpoint: refuse it.
  case noEndpoint(service: String)
  /// A route rule's fault injection says: answer with `status`, send nothing.
  case abort(service: String, status: Int)
  /// A circuit breaker's limit is reached: fail at once (503 naming the limit).
  case overflow(service: String, limit: CircuitBreaker.Limit)
  /// Not a service: to the original destination, untouched.
  case passthrough
}

/// An endpoint picked for one connection or request, and the balancer that counts it.
public struct Upstream: Sendable, Hashable {
  /// The service.
  public var service: String
  /// The endpoint, with the service port's target port.
  public var endpoint: EndpointAddress
  /// What the port speaks.
  public var `protocol`: ServiceProtocol
  /// The route rule that decided (its name, or `#index`); nil when no rule matched.
  public var rule: String?
  /// The balancer's pool: the service, or one backend subset of a rule.
  var pool: String
  /// The balancer's token (nil when the balancer does not track requests).
  public var token: RequestToken?
  /// A delay the route rule's fault injection adds before the request goes on, in nanoseconds.
  public var delayNanos: UInt64 = 0
  /// The route rule's retry policy for HTTP requests, if it has one.
  public var retries: RouteRetries?
  /// The route rule's overall timeout, in nanoseconds.
  public var timeoutNanos: UInt64?
  /// A retry (holding a retry slot of the circuit breaker) rather than a first attempt.
  public var isRetry = false
}

/// The parts of an HTTP request that routes and `ring_hash` keys look at.
public struct RequestView {
  /// The method, such as `GET`.
  public var method: String
  /// The request target (path and query).
  public var target: String
  /// A header's values joined (cookies by `"; "`), by lower-case name; nil when absent.
  public var header: (String) -> String?

  /// Creates a view.
  public init(method: String, target: String, header: @escaping (String) -> String?) {
    self.method = method
    self.target = target
    self.header = header
  }
}

/// The sidecar's routing table: virtual IP and port to service, each with its balancer and the
/// compiled rules of its route. Shared by the listeners' event loops behind a lock (a decision is
/// a few hundred nanoseconds).
public final class ServiceTable: Sendable {
  private struct Entry {
    var service: ProxyService
    var port: ServicePort
  }
  /// One rule: its match and a smooth weighted round robin over its backends (nginx's scheme:
  /// every pick adds each weight to its backend's credit and takes the total from the richest,
  /// so 90/10 is exact in every 10 picks and interleaved rather than bunched).
  private struct Rule {
    var label: String
    var match: RouteMatch?
    var needsHTTP: Bool
    var pools: [String]
    var weights: [Int]
    var credit: [Int]
    var picked: [UInt64]
    var fault: RouteFault?
    var delays = ShareCounter()
    var aborts = ShareCounter()
    var retries: RouteRetries?
    var timeoutNanos: UInt64?
    var budget: RetryBudget?

    mutating func nextBackend() -> Int? {
      var best: Int?
      var total = 0
      for i in self.weights.indices where self.weights[i] > 0 {
        self.credit[i] += self.weights[i]
        total += self.weights[i]
        if best.map({ self.credit[i] > self.credit[$0] }) ?? true { best = i }
      }
      if let best {
        self.credit[best] -= total
        self.picked[best] += 1
      }
      return best
    }
  }
  private struct State {
    var snapshot = ProxySnapshot(version: -1, services: [])
    var version = -1
    var entries: [UInt64: Entry] = [:]
    var pools: [String: EndpointPool] = [:]
    var rules: [String: [Rule]] = [:]
    var breakers: [String: CircuitBreaker] = [:]
    /// Local rate limits: a service's bucket by its name, a rule's by `service/rule`.
    var buckets: [String: (limit: RateLimitSpec, bucket: TokenBucket)] = [:]
    /// The identity of each meshed endpoint, by service and address.
    var identities: [String: [UInt32: String]] = [:]
    /// Each service's mTLS mode, when it sets one.
    var modes: [String: MTLSMode] = [:]
    /// The access policies, and each service's namespace.
    var access = AccessPolicyEngine([])
    var namespaces: [String: String] = [:]
    /// Where inbound connections land: workload address and target port to the services (by
    /// name) served there.
    var inbound: [UInt64: [Entry]] = [:]
  }
  private let state = Mutex(State())

  /// Creates an empty table.
  public init() {}

  /// The snapshot version in use.
  public var version: Int { self.state.withLock { $0.version } }

  /// Applies a snapshot: pools keep their balancer (and its history) across updates unless their
  /// policy changed; connections already open are not touched.
  public func apply(_ snapshot: ProxySnapshot, now: UInt64? = nil) {
    let now = now ?? UInt64(MonotonicClock.nanoseconds())
    self.state.withLock { state in
      var entries: [UInt64: Entry] = [:]
      var pools: [String: EndpointPool] = [:]
      var rules: [String: [Rule]] = [:]
      var buckets: [String: (limit: RateLimitSpec, bucket: TokenBucket)] = [:]
      var inbound: [UInt64: [Entry]] = [:]
      func bucket(_ key: String, _ limit: RateLimitSpec?) {
        guard let limit else { return }
        if let old = state.buckets[key], old.limit == limit {
          buckets[key] = old
        } else {
          buckets[key] = (limit, TokenBucket(limit))
        }
      }
      for service in snapshot.services {
        bucket(service.name, service.rateLimit)
        for (i, rule) in (service.routes ?? []).enumerated() {
          bucket("\(service.name)/\(rule.name ?? "#\(i)")", rule.rateLimit)
        }
        for endpoint in service.endpoints {
          guard let address = IPv4Address(endpoint) else { continue }
          for port in service.ports {
            inbound[Self.key(address.value, UInt16(port.effectiveTargetPort)), default: []].append(
              Entry(service: service, port: port))
          }
        }
        guard let vip = IPv4Address(service.vip) else { continue }
        let unhealthy = Set(service.unhealthy ?? [])
        func pool(_ key: String, _ endpoints: [String]) {
          let policy = service.balancer.policy ?? .roundRobin
          var pool: EndpointPool
          if let existing = state.pools[key], existing.balancer.policy == policy {
            pool = existing
          } else {
            pool = EndpointPool(
              balancer: BalancerConfiguration(policy: policy, hashKey: service.balancer.hashKey)
                .makeLoadBalancer(),
              endpoints: [])
          }
          pool.update(
            endpoints: endpoints.compactMap { text in
              IPv4Address(text).map { ($0.value, !unhealthy.contains(text)) }
            },
            outlierDetection: service.outlierDetection, now: now)
          pools[key] = pool
        }
        pool(service.name, service.endpoints)
        var compiled: [Rule] = []
        for (i, rule) in (service.routes ?? []).enumerated() {
          let label = rule.name ?? "#\(i)"
          var pools: [String] = []
          for (j, backend) in rule.backends.enumerated() {
            let key = "\(service.name)/\(label)/\(j)"
            pool(key, backend.endpoints)
            pools.append(key)
          }
          let old = state.rules[service.name]?.first { $0.label == label && $0.pools == pools }
          compiled.append(
            Rule(
              label: label, match: rule.match, needsHTTP: rule.match?.needsHTTP ?? false, pools: pools,
              weights: rule.backends.map { max($0.weight, 0) },
              credit: old?.credit ?? Array(repeating: 0, count: pools.count),
              picked: old?.picked ?? Array(repeating: 0, count: pools.count), fault: rule.fault,
              delays: old?.delays ?? ShareCounter(), aborts: old?.aborts ?? ShareCounter(),
              retries: rule.retries, timeoutNanos: rule.timeoutMilliseconds.map { UInt64($0) * 1_000_000 },
              budget: rule.retries.map { retries in
                old?.budget
                  ?? RetryBudget(
                    ratio: (retries.budgetPercent ?? 20) / 100,
                    minimumPerSecond: retries.minRetriesPerSecond ?? 10)
              }))
        }
        rules[service.name] = compiled
        for port in service.ports {
          entries[Self.key(vip.value, UInt16(port.port))] = Entry(service: service, port: port)
        }
      }
      state.entries = entries
      state.inbound = inbound
      state.identities = Dictionary(
        uniqueKeysWithValues: snapshot.services.compactMap { service in
          service.identities.map { identities in
            (
              service.name,
              Dictionary(
                identities.compactMap { address, uri in IPv4Address(address).map { ($0.value, uri) } },
                uniquingKeysWith: { a, _ in a })
            )
          }
        })
      state.modes = Dictionary(
        uniqueKeysWithValues: snapshot.services.compactMap { s in s.mtls.map { (s.name, $0) } })
      state.access = AccessPolicyEngine(snapshot.policies ?? [])
      state.namespaces = Dictionary(
        uniqueKeysWithValues: snapshot.services.compactMap { s in s.namespace.map { (s.name, $0) } })
      state.buckets = buckets
      state.pools = pools
      state.rules = rules
      state.breakers = Dictionary(
        uniqueKeysWithValues: snapshot.services.map { service in
          var breaker = state.breakers[service.name] ?? CircuitBreaker(service.circuitBreakers)
          breaker.update(service.circuitBreakers)
          return (service.name, breaker)
        })
      state.version = snapshot.version
      state.snapshot = snapshot
    }
  }

  /// Decides where a connection (or, with `request`, an HTTP request) to a destination goes.
  /// The first route rule that matches picks a backend subset by weight; then the subset's
  /// balancer picks an endpoint, keyed (for `ring_hash`) by the request or the source address.
  public func decide(
    address: UInt32, port: UInt16, request: RequestView? = nil, source: EndpointAddress? = nil, now: UInt64
  ) -> OutboundDecision {
    self.state.withLock { state in
      guard let entry = state.entries[Self.key(address, port)] else { return .passthrough }
      let service = entry.service.name
      var pool = service
      var ruleLabel: String?
      var delay: UInt64 = 0
      var retries: RouteRetries?
      var timeout: UInt64?
      if var rules = state.rules[service], !rules.isEmpty,
        let index = rules.firstIndex(where: { Self.applies($0, to: request) })
      {
        defer { state.rules[service] = rules }
        // Faults apply to HTTP requests only; an abort answers before any endpoint is picked.
        if request != nil, let fault = rules[index].fault {
          if let abort = fault.abort, rules[index].aborts.next(percent: abort.percent) {
            return .abort(service: service, status: abort.status)
          }
          if let wait = fault.delay, rules[index].delays.next(percent: wait.percent) {
            delay = UInt64(wait.milliseconds) * 1_000_000
          }
        }
        guard let backend = rules[index].nextBackend() else { return .noEndpoint(service: service) }
        pool = rules[index].pools[backend]
        ruleLabel = rules[index].label
        if request != nil {
          retries = rules[index].retries
          timeout = rules[index].timeoutNanos
          rules[index].budget?.requestStarted(now: now)
        }
      }
      guard state.pools[pool] != nil else { return .noEndpoint(service: service) }
      state.pools[pool]!.tickIfDue(now: now)
      let balancer = state.pools[pool]!.balancer
      let context =
        entry.service.balancer.hashKey.map { key in
          key.pickContext(header: request?.header ?? { _ in nil }, sourceAddress: source)
        } ?? (source.map { PickContext(sourceAddress: $0) } ?? .none)
      if let limit = state.breakers[service]?.acquireRequest() {
        return .overflow(service: service, limit: limit)
      }
      guard let token = balancer.begin(context, now: now) else {
        state.breakers[service]?.releaseRequest()
        return .noEndpoint(service: service)
      }
      return .service(
        Upstream(
          service: service,
          endpoint: EndpointAddress(ipv4: token.address.ipv4, port: UInt16(entry.port.effectiveTargetPort)),
          protocol: entry.port.effectiveProtocol, rule: ruleLabel, pool: pool, token: token,
          delayNanos: delay,
          retries: retries, timeoutNanos: timeout
        ))
    }
  }

  /// Another attempt for the request whose attempt `previous` failed, on an endpoint not yet
  /// tried when the pool has one: nil when the rule's retry budget is spent or no endpoint is
  /// usable. Picks passed over are ended at once.
  public func retry(_ previous: Upstream, avoiding tried: Set<UInt32>, now: UInt64) -> Upstream? {
    self.state.withLock { state in
      guard let label = previous.rule, var rules = state.rules[previous.service],
        let index = rules.firstIndex(where: { $0.label == label }), rules[index].budget != nil
      else { return nil }
      defer { state.rules[previous.service] = rules }
      guard let balancer = state.pools[previous.pool]?.balancer else { return nil }
      // The breaker first, so that a retry it refuses spends no budget.
      guard state.breakers[previous.service]?.acquireRetry() == nil else { return nil }
      guard rules[index].budget!.tryRetry(now: now) else {
        state.breakers[previous.service]?.releaseRetry()
        return nil
      }
      var picked: RequestToken?
      for _ in 0..<4 {
        guard let token = balancer.begin(.none, now: now) else { break }
        if let passed = picked { balancer.finish(passed, now: now, success: true) }
        picked = token  // a tried one is kept in case no other comes up
        if !tried.contains(token.address.ipv4) { break }
      }
      guard let token = picked else {
        state.breakers[previous.service]?.releaseRetry()
        return nil
      }
      var next = previous
      next.isRetry = true
      next.endpoint = EndpointAddress(ipv4: token.address.ipv4, port: previous.endpoint.port)
      next.token = token
      next.delayNanos = 0
      return next
    }
  }

  /// Takes a slot of a connection-level limit (`maxConnections` when a new upstream connection
  /// opens, `maxPendingRequests` while a request waits for one) of `service`'s breaker, or
  /// returns the limit that refuses. Give it back with ``release(_:service:)``.
  public func hold(_ limit: CircuitBreaker.Limit, service: String) -> CircuitBreaker.Limit? {
    self.state.withLock { state in state.breakers[service]?.acquire(limit) }
  }

  /// Gives back a slot taken with ``hold(_:service:)``.
  public func release(_ limit: CircuitBreaker.Limit, service: String) {
    self.state.withLock { state in state.breakers[service]?.release(limit) }
  }

  /// The service and protocol of an inbound connection to the workload's own `address` and
  /// `port` (a service's target port on one of its endpoints), or nil when none is served there.
  /// When several services share the port, the one `named` (as the calling sidecar said), else
  /// the first by name; a port is taken as HTTP when any of them declares it so.
  public func inboundService(address: UInt32, port: UInt16, named: String? = nil)
    -> (service: String, protocol: ServiceProtocol)?
  {
    self.state.withLock { state in
      guard let entries = state.inbound[Self.key(address, port)], let first = entries.first else {
        return nil
      }
      let chosen = entries.first { $0.service.name == named } ?? first
      let http = entries.first { $0.port.effectiveProtocol != .tcp }
      return (chosen.service.name, (named == nil ? http ?? chosen : chosen).port.effectiveProtocol)
    }
  }

  /// The identity (SPIFFE URI) the certificate of `service`'s endpoint at `address` must name,
  /// when that endpoint has a sidecar (callers speak mutual TLS to it); nil otherwise.
  public func peerIdentity(service: String, address: UInt32) -> String? {
    self.state.withLock { state in
      guard let identities = state.identities[service] else { return nil }
      return identities[address]
    }
  }

  /// What the access policies say of `peer` (nil: unauthenticated) reaching `service` with
  /// `request` (nil: a TCP connection).
  public func authorize(service: String, peer: SPIFFEID?, request: RequestView?) -> AccessDecision {
    let (engine, namespace) = self.state.withLock { ($0.access, $0.namespaces[service] ?? "") }
    if engine.isEmpty { return Self.noPolicy }
    return engine.decide(service: service, namespace: namespace, peer: peer, request: request)
  }

  /// The decision when the mesh has no access policy at all (made once, not per request).
  private static let noPolicy = AccessDecision(
    allowed: true, policy: nil, rule: nil, reason: "no access policy applies")

  /// What the access policies say of `peer` reaching every service served at the workload's
  /// `address` and `port`: the first refusal, else an allow (the caller did not, or could not
  /// be trusted to, say which of them it called).
  public func authorizeAll(address: UInt32, port: UInt16, peer: SPIFFEID?, request: RequestView?)
    -> AccessDecision
  {
    let (engine, services) = self.state.withLock { state -> (AccessPolicyEngine, [(String, String)]) in
      guard !state.access.isEmpty else { return (state.access, []) }
      return (
        state.access,
        (state.inbound[Self.key(address, port)] ?? []).map {
          ($0.service.name, state.namespaces[$0.service.name] ?? "")
        }
      )
    }
    if engine.isEmpty { return Self.noPolicy }
    var last = AccessDecision(
      allowed: true, policy: nil, rule: nil, reason: "no service is served on this port")
    for (service, namespace) in services {
      last = engine.decide(service: service, namespace: namespace, peer: peer, request: request)
      if !last.allowed { return last }
    }
    return last
  }

  /// Whether `service` takes plaintext at its endpoints (permissive unless it says strict).
  public func mtlsMode(of service: String) -> MTLSMode {
    self.state.withLock { state in state.modes[service] ?? .permissive }
  }

  /// Applies the local rate limits to one inbound request (or, without `request`, connection)
  /// to `service`: the service's bucket, then the bucket of the first route rule that matches,
  /// each one token. Nil when admitted; else how long until a token comes, in nanoseconds, and
  /// the rule whose bucket refused (nil: the service's). The token of a bucket that admitted
  /// it is given back.
  public func admit(service: String, request: RequestView?, now: UInt64) -> (wait: UInt64, route: String?)? {
    self.state.withLock { state in
      guard !state.buckets.isEmpty else { return nil }
      var keys: [(key: String, route: String?)] = []
      if state.buckets[service] != nil { keys.append((service, nil)) }
      if let index = state.rules[service]?.firstIndex(where: { Self.applies($0, to: request) }),
        let label = state.rules[service]?[index].label, state.buckets["\(service)/\(label)"] != nil
      {
        keys.append(("\(service)/\(label)", label))
      }
      var taken: [String] = []
      for (key, route) in keys {
        if let wait = state.buckets[key]!.bucket.take(now: now) {
          for done in taken { state.buckets[done]!.bucket.giveBack() }
          return (wait, route)
        }
        taken.append(key)
      }
      return nil
    }
  }

  /// Requests a local rate limit refused, by bucket (`service` or `service/rule`).
  public var rateLimited: [String: UInt64] {
    self.state.withLock { state in state.buckets.mapValues(\.bucket.refused).filter { $0.value > 0 } }
  }

  /// Requests refused by a circuit breaker, by service and limit.
  public var overflows: [String: [CircuitBreaker.Limit: UInt64]] {
    self.state.withLock { state in state.breakers.mapValues(\.refused).filter { !$0.value.isEmpty } }
  }

  /// Retries refused because a rule's budget was spent, by service.
  public var retriesExhausted: [String: UInt64] {
    self.state.withLock { state in
      state.rules.mapValues { rules in rules.compactMap(\.budget?.exhausted).reduce(0, +) }.filter {
        $0.value > 0
      }
    }
  }

  private static func applies(_ rule: Rule, to request: RequestView?) -> Bool {
    guard let match = rule.match else { return true }
    guard let request else { return !rule.needsHTTP }
    return match.matches(method: request.method, target: request.target, header: request.header)
  }

  /// The service and protocol behind a VIP and port, without picking an endpoint.
  public func lookup(address: UInt32, port: UInt16) -> (service: String, protocol: ServiceProtocol)? {
    self.state.withLock { state in
      state.entries[Self.key(address, port)].map { ($0.service.name, $0.port.effectiveProtocol) }
    }
  }

  /// Ends a connection (or request) that ``decide(address:port:request:source:now:)`` sent to an
  /// upstream, so that its balancer's load and latency figures stay true. An attempt
  /// `superseded` by a retry keeps the request's circuit breaker slot for the retry, which
  /// gives it back when the request ends; a retry gives its retry slot back either way.
  public func finish(
    _ upstream: Upstream, now: UInt64, success: Bool, outcome: RequestOutcome? = nil, superseded: Bool = false
  ) {
    self.state.withLock { state in
      if upstream.isRetry { state.breakers[upstream.service]?.releaseRetry() }
      if !superseded { state.breakers[upstream.service]?.releaseRequest() }
      guard let token = upstream.token, state.pools[upstream.pool] != nil else { return }
      state.pools[upstream.pool]!.balancer.finish(token, now: now, success: success)
      if let outcome { state.pools[upstream.pool]!.record(outcome, for: token.address.ipv4, now: now) }
    }
  }

  /// The snapshot in use (for the admin page).
  public var snapshot: ProxySnapshot { self.state.withLock { $0.snapshot } }

  /// Every service's endpoints with what its balancer knows of them, and its route's backends.
  public var clusters: [ClusterStatus] { self.clusters(now: UInt64(MonotonicClock.nanoseconds())) }

  /// The clusters as they stand at `now` (the clock the table's callers use).
  public func clusters(now: UInt64) -> [ClusterStatus] {
    self.state.withLock { state in
      state.snapshot.services.map { service in
        let endpoints = Self.endpoints(service.endpoints, in: state.pools[service.name], now: now)
        let routes = (state.rules[service.name] ?? []).enumerated().flatMap { i, rule in
          rule.pools.indices.map { j in
            let backend = service.routes?[i].backends[j]
            return ClusterStatus.Backend(
              rule: rule.label, subset: backend?.subset ?? [:], weight: rule.weights[j],
              picked: rule.picked[j],
              endpoints: Self.endpoints(backend?.endpoints ?? [], in: state.pools[rule.pools[j]], now: now))
          }
        }
        return ClusterStatus(
          service: service.name, vip: service.vip, policy: (service.balancer.policy ?? .roundRobin).rawValue,
          endpoints: endpoints, routes: routes.isEmpty ? nil : routes,
          panic: state.pools[service.name]?.panic == true ? true : nil)
      }
    }
  }

  private static func endpoints(_ addresses: [String], in pool: EndpointPool?, now: UInt64)
    -> [ClusterStatus.Endpoint]
  {
    addresses.compactMap { IPv4Address($0) }.map { address in
      let stats = pool?.balancer.stats(for: EndpointAddress(ipv4: address.value, port: 0))
      let record = pool?.detector?.records[address.value]
      return ClusterStatus.Endpoint(
        address: address.description, healthy: stats?.endpoint.isHealthy ?? false,
        active: stats?.outstanding ?? 0, completed: stats?.completed ?? 0, failed: stats?.failed ?? 0,
        ejected: pool?.isEjected(address.value, now: now) == true ? true : nil,
        ejections: record.map { $0.ejections })
    }
  }

  private static func key(_ address: UInt32, _ port: UInt16) -> UInt64 {
    UInt64(address) << 16 | UInt64(port)
  }
}
