import WeftWire

/// Checks resources: first each on its own (``validate(_:)``), then against the others already
/// stored (``validate(_:against:)``). Every failure names the resource, the field and the problem.
public enum Validation {
  /// Checks one resource on its own: name, apiVersion, known spec fields and their values.
  public static func validate(_ r: Resource) throws(ValidationError) {
    let who = r.key.description
    func fail(_ field: String, _ problem: String) -> ValidationError {
      ValidationError(resource: who, field: field, problem: problem)
    }
    guard r.apiVersion == weftAPIVersion else {
      throw fail("apiVersion", "'\(r.apiVersion)' is not supported; use \(weftAPIVersion)")
    }
    try Self.validateName(r.metadata.name, resource: who)
    for (k, v) in r.metadata.labels ?? [:] {
      guard (1...63).contains(k.count), v.count <= 63 else {
        throw fail("metadata.labels.\(k)", "label keys must be 1-63 characters and values at most 63")
      }
    }
    guard case .object = r.spec else { throw fail("spec", "must be a mapping of fields") }
    let allowed: Set<String>
    switch r.kind {
    case .network: allowed = NetworkSpec.fields
    case .host: allowed = HostSpec.fields
    case .workload: allowed = WorkloadSpec.fields
    case .service: allowed = ServiceSpec.fields
    case .route: allowed = RouteSpec.fields
    case .accessPolicy: allowed = AccessPolicySpec.fields
    }
    if let unknown = r.spec.keys.first(where: { !allowed.contains($0) }) {
      throw fail(
        "spec.\(unknown)", "unknown field; \(r.kind.rawValue) has \(allowed.sorted().joined(separator: ", "))"
      )
    }
    switch r.kind {
    case .network:
      let spec: NetworkSpec
      do { spec = try r.decodeSpec() } catch { throw fail("spec", Self.describe(error)) }
      try Self.validate(spec, fail)
    case .host:
      let spec: HostSpec
      do { spec = try r.decodeSpec() } catch { throw fail("spec", Self.describe(error)) }
      guard IPAddress(spec.underlay) != nil else {
        throw fail("spec.underlay", "'\(spec.underlay)' is not an IP address")
      }
      if let d = spec.datapath, d != "kernel" && d != "userspace" {
        throw fail("spec.datapath", "'\(d)' is not a datapath; use kernel or userspace")
      }
    case .workload:
      let spec: WorkloadSpec
      do { spec = try r.decodeSpec() } catch { throw fail("spec", Self.describe(error)) }
      if let a = spec.address, IPv4Address(a) == nil {
        throw fail("spec.address", "'\(a)' is not an IPv4 address")
      }
      if let m = spec.mac, MACAddress(m) == nil {
        throw fail("spec.mac", "'\(m)' is not a MAC address such as 02:00:00:00:00:01")
      }
    case .service:
      try Self.validateService(r, fail)
    case .route:
      try Self.validateRoute(r, fail)
    case .accessPolicy:
      try Self.validateAccessPolicy(r, fail)
    }
  }

  /// Checks a resource against the stored ones (which may include an older version of it):
  /// overlapping network ranges, a VNI already taken, a workload naming an unknown network or host.
  public static func validate(_ r: Resource, against existing: [Resource]) throws(ValidationError) {
    let who = r.key.description
    let others = existing.filter { $0.key != r.key }
    switch r.kind {
    case .network:
      guard let spec = try? r.decodeSpec(NetworkSpec.self), let mine = spec.prefix else { return }
      for other in others where other.kind == .network {
        guard let o = try? other.decodeSpec(NetworkSpec.self) else { continue }
        if let theirs = o.prefix, mine.overlaps(theirs) {
          throw ValidationError(
            resource: who, field: "spec.cidr",
            problem: "\(spec.cidr) overlaps \(o.cidr) of network \(other.metadata.name)")
        }
        let theirVNI = o.vni ?? (try? other.decodeStatus(NetworkStatus.self))?.vni
        if let v = spec.vni, v == theirVNI {
          throw ValidationError(
            resource: who, field: "spec.vni", problem: "VNI \(v) is taken by network \(other.metadata.name)")
        }
      }
    case .workload:
      guard let spec = try? r.decodeSpec(WorkloadSpec.self) else { return }
      guard let net = others.first(where: { $0.kind == .network && $0.metadata.name == spec.network }) else {
        throw ValidationError(resource: who, field: "spec.network", problem: "no network '\(spec.network)'")
      }
      guard others.contains(where: { $0.kind == .host && $0.metadata.name == spec.host }) else {
        throw ValidationError(resource: who, field: "spec.host", problem: "no host '\(spec.host)'")
      }
      if let a = spec.address.flatMap({ IPAddress($0) }),
        let range = (try? net.decodeSpec(NetworkSpec.self))?.prefix,
        !range.contains(a)
      {
        throw ValidationError(
          resource: who, field: "spec.address", problem: "\(a) is outside network \(spec.network) (\(range))")
      }
    case .service:
      guard let spec = try? r.decodeSpec(ServiceSpec.self) else { return }
      guard others.contains(where: { $0.kind == .network && $0.metadata.name == spec.network }) else {
        throw ValidationError(resource: who, field: "spec.network", problem: "no network '\(spec.network)'")
      }
      if let vip = spec.vip.flatMap({ IPAddress($0) }) {
        for other in others where other.kind == .service {
          let theirs = (try? other.decodeStatus(ServiceStatus.self))??.vip
          if theirs.flatMap({ IPAddress($0) }) == vip {
            throw ValidationError(
              resource: who, field: "spec.vip", problem: "\(vip) is taken by service \(other.metadata.name)")
          }
        }
      }
    case .route:
      try Self.validateRoute(r, against: others)
    case .accessPolicy:
      guard let spec = try? r.decodeSpec(AccessPolicySpec.self), let service = spec.service else { break }
      guard others.contains(where: { $0.kind == .service && $0.metadata.name == service }) else {
        throw ValidationError(resource: who, field: "spec.service", problem: "no service '\(service)'")
      }
    case .host:
      break
    }
  }

  /// Checks a name: 1-63 lower-case letters, digits, `-` or `.`, starting and ending with a letter or digit.
  public static func validateName(_ name: String, resource: String) throws(ValidationError) {
    let allowed = name.allSatisfy {
      ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || $0 == "."
    }
    let ends =
      name.first.map { $0.isLetter || $0.isNumber } == true
      && name.last.map { $0.isLetter || $0.isNumber } == true
    guard (1...63).contains(name.count), allowed, ends else {
      throw ValidationError(
        resource: resource, field: "metadata.name",
        problem:
          "'\(name)' is not a valid name: use 1-63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit"
      )
    }
  }

  private static func validate(_ spec: NetworkSpec, _ fail: (String, String) -> ValidationError)
    throws(ValidationError)
  {
    guard let prefix = IPPrefix(spec.cidr), prefix.address.isV4 else {
      throw fail("spec.cidr", "'\(spec.cidr)' is not an IPv4 prefix such as 100.96.0.0/16")
    }
    guard prefix.network == prefix else {
      throw fail("spec.cidr", "'\(spec.cidr)' has host bits set; did you mean \(prefix.network)?")
    }
    let hostLength = spec.effectiveHostPrefixLength
    guard hostLength > Int(prefix.length), hostLength <= 30 else {
      throw fail(
        "spec.hostPrefixLength",
        "\(hostLength) must be longer than the network's /\(prefix.length) and at most 30")
    }
    if let vni = spec.vni, !(1...NetworkSpec.maxVNI).contains(vni) {
      throw fail("spec.vni", "\(vni) is out of range; a VNI is 1-\(NetworkSpec.maxVNI)")
    }
    if case .fixed(let mtu)? = spec.mtu, !(576...9000).contains(mtu) {
      throw fail("spec.mtu", "\(mtu) is out of range; use auto or 576-9000")
    }
  }

  private static func validateService(_ r: Resource, _ fail: (String, String) -> ValidationError)
    throws(ValidationError)
  {
    // Nested mappings first, so that a misspelt key is named rather than silently ignored.
    if case .array(let ports)? = r.spec["ports"] {
      for (i, port) in ports.enumerated() {
        if let unknown = port.keys.first(where: { !ServicePort.fields.contains($0) }) {
          throw fail(
            "spec.ports[\(i)].\(unknown)",
            "unknown field; a port has \(ServicePort.fields.sorted().joined(separator: ", "))")
        }
      }
    }
    if let check = r.spec["healthCheck"],
      let unknown = check.keys.first(where: { !ServiceHealthCheck.fields.contains($0) })
    {
      throw fail(
        "spec.healthCheck.\(unknown)",
        "unknown field; healthCheck has \(ServiceHealthCheck.fields.sorted().joined(separator: ", "))")
    }
    if let balancer = r.spec["balancer"],
      let unknown = balancer.keys.first(where: { !ServiceBalancing.fields.contains($0) })
    {
      throw fail(
        "spec.balancer.\(unknown)",
        "unknown field; balancer has \(ServiceBalancing.fields.sorted().joined(separator: ", "))")
    }
    let spec: ServiceSpec
    do { spec = try r.decodeSpec() } catch { throw fail("spec", Self.describe(error)) }
    guard !spec.selector.isEmpty else {
      throw fail("spec.selector", "must name at least one workload label, such as {app: backend}")
    }
    guard !spec.ports.isEmpty else { throw fail("spec.ports", "must list at least one port") }
    var seenPorts: Set<Int> = []
    var seenNames: Set<String> = []
    for (i, port) in spec.ports.enumerated() {
      for (field, value) in [("port", port.port), ("targetPort", port.effectiveTargetPort)]
      where !(1...65535).contains(value) {
        throw fail("spec.ports[\(i)].\(field)", "\(value) is not a port (1-65535)")
      }
      guard seenPorts.insert(port.port).inserted else {
        throw fail("spec.ports[\(i)].port", "\(port.port) is listed twice")
      }
      if let name = port.name, !seenNames.insert(name).inserted {
        throw fail("spec.ports[\(i)].name", "'\(name)' is used by two ports")
      }
    }
    if let vip = spec.vip {
      guard let address = IPAddress(vip), ServiceSpec.vipRange.contains(address) else {
        throw fail("spec.vip", "'\(vip)' is not an address in \(ServiceSpec.vipRange)")
      }
      guard address != ServiceSpec.vipRange.network.address else {
        throw fail("spec.vip", "\(vip) is the range's network address")
      }
    }
    if let check = spec.healthCheck {
      if let path = check.path, !path.hasPrefix("/") {
        throw fail("spec.healthCheck.path", "'\(path)' must start with /")
      }
      if let seconds = check.intervalSeconds, !(1...300).contains(seconds) {
        throw fail("spec.healthCheck.intervalSeconds", "\(seconds) is outside 1-300")
      }
      if let ms = check.timeoutMilliseconds, !(10...60_000).contains(ms) {
        throw fail("spec.healthCheck.timeoutMilliseconds", "\(ms) is outside 10-60000")
      }
    }
    if let outliers = r.spec["outlierDetection"] {
      try Self.refuseUnknown(
        outliers, allowed: OutlierDetectionSpec.fields, at: "spec.outlierDetection", what: "outlierDetection",
        fail)
    }
    if let breakers = r.spec["circuitBreakers"] {
      try Self.refuseUnknown(
        breakers, allowed: CircuitBreakerSpec.fields, at: "spec.circuitBreakers", what: "circuitBreakers",
        fail)
    }
    if let limit = r.spec["rateLimit"] {
      try Self.refuseUnknown(
        limit, allowed: RateLimitSpec.fields, at: "spec.rateLimit", what: "rateLimit", fail)
    }
    if let problem = spec.rateLimit?.problem {
      throw fail("spec.rateLimit.\(problem.field)", problem.message)
    }
    if let problem = spec.circuitBreakers?.problem {
      throw fail("spec.circuitBreakers.\(problem.field)", problem.message)
    }
    if let problem = spec.outlierDetection?.problem {
      throw fail("spec.outlierDetection.\(problem.field)", problem.message)
    }
    if spec.balancer?.hashKey != nil, spec.balancer?.policy != .ringHash {
      throw fail("spec.balancer.hashKey", "applies to policy ring_hash only")
    }
  }

  /// A coding path as users write it: `ports[0].protocol`.
  static func path(_ keys: [any CodingKey]) -> String {
    var out = ""
    for key in keys {
      if let index = key.intValue {
        out += "[\(index)]"
      } else {
        out += (out.isEmpty ? "" : ".") + key.stringValue
      }
    }
    return out
  }

  /// A short reason from a decoding error.
  public static func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
      return "field '\(Self.path(c.codingPath))' has the wrong type (\(c.debugDescription))"
    case DecodingError.dataCorrupted(let c):
      let path = Self.path(c.codingPath)
      return path.isEmpty ? c.debugDescription : "field '\(path)': \(c.debugDescription)"
    default: return "\(error)"
    }
  }
}

extension IPPrefix {
  /// True when the two prefixes share any address.
  public func overlaps(_ other: IPPrefix) -> Bool {
    let shorter = self.length <= other.length ? self : other
    let longer = self.length <= other.length ? other : self
    return shorter.contains(longer.network.address)
  }
}
