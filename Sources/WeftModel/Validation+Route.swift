extension Validation {
  /// Checks a Route on its own: known fields at every level, at least one rule, each with at
  /// least one backend and a positive total weight, well-formed paths, methods and header names.
  static func validateRoute(_ r: Resource, _ fail: (String, String) -> ValidationError)
    throws(ValidationError)
  {
    if case .array(let rules)? = r.spec["rules"] {
      for (i, rule) in rules.enumerated() {
        try Self.refuseUnknown(rule, allowed: RouteRule.fields, at: "spec.rules[\(i)]", what: "a rule", fail)
        if let retries = rule["retries"] {
          try Self.refuseUnknown(
            retries, allowed: RouteRetries.fields, at: "spec.rules[\(i)].retries", what: "retries", fail)
        }
        if let fault = rule["fault"] {
          try Self.refuseUnknown(
            fault, allowed: RouteFault.fields, at: "spec.rules[\(i)].fault", what: "fault", fail)
          if let delay = fault["delay"] {
            try Self.refuseUnknown(
              delay, allowed: RouteFault.Delay.fields, at: "spec.rules[\(i)].fault.delay", what: "delay", fail
            )
          }
          if let abort = fault["abort"] {
            try Self.refuseUnknown(
              abort, allowed: RouteFault.Abort.fields, at: "spec.rules[\(i)].fault.abort", what: "abort", fail
            )
          }
        }
        if let limit = rule["rateLimit"] {
          try Self.refuseUnknown(
            limit, allowed: RateLimitSpec.fields, at: "spec.rules[\(i)].rateLimit", what: "rateLimit", fail)
        }
        if let match = rule["match"] {
          try Self.refuseUnknown(
            match, allowed: RouteMatch.fields, at: "spec.rules[\(i)].match", what: "match", fail)
        }
        if case .array(let backends)? = rule["backends"] {
          for (j, backend) in backends.enumerated() {
            try Self.refuseUnknown(
              backend, allowed: RouteBackend.fields, at: "spec.rules[\(i)].backends[\(j)]", what: "a backend",
              fail)
          }
        }
      }
    }
    let spec: RouteSpec
    do { spec = try r.decodeSpec() } catch { throw fail("spec", Self.describe(error)) }
    do { try Self.validateName(spec.service, resource: r.key.description) } catch {
      throw fail("spec.service", "'\(spec.service)' is not a service name")
    }
    guard !spec.rules.isEmpty else { throw fail("spec.rules", "must list at least one rule") }
    for (i, rule) in spec.rules.enumerated() {
      let at = "spec.rules[\(i)]"
      guard !rule.backends.isEmpty else { throw fail("\(at).backends", "must list at least one backend") }
      for (j, backend) in rule.backends.enumerated() {
        if let weight = backend.weight, !(0...10_000).contains(weight) {
          throw fail("\(at).backends[\(j)].weight", "\(weight) is outside 0-10000")
        }
      }
      guard rule.backends.contains(where: { $0.effectiveWeight > 0 }) else {
        throw fail("\(at).backends", "every weight is 0: nothing would be sent anywhere")
      }
      if let problem = rule.fault?.problem { throw fail("\(at).fault.\(problem.field)", problem.message) }
      if let problem = rule.retries?.problem { throw fail("\(at).retries.\(problem.field)", problem.message) }
      if let problem = rule.rateLimit?.problem {
        throw fail("\(at).rateLimit.\(problem.field)", problem.message)
      }
      if let timeout = rule.timeoutMilliseconds, !(1...3_600_000).contains(timeout) {
        throw fail("\(at).timeoutMilliseconds", "\(timeout) is outside 1-3600000")
      }
      guard let match = rule.match else { continue }
      for (field, value) in [("path", match.path), ("pathPrefix", match.pathPrefix)] {
        if let value, !value.hasPrefix("/") {
          throw fail("\(at).match.\(field)", "'\(value)' must start with /")
        }
      }
      if let method = match.method,
        method.isEmpty || !method.allSatisfy({ $0.isASCII && ($0.isUppercase || $0 == "-") })
      {
        throw fail("\(at).match.method", "'\(method)' is not a method such as GET")
      }
      for name in (match.headers ?? [:]).keys {
        let token =
          !name.isEmpty
          && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        guard token else { throw fail("\(at).match.headers.\(name)", "'\(name)' is not a header name") }
      }
    }
  }

  /// Checks a Route against the stored resources: its service exists and no other Route has it.
  static func validateRoute(_ r: Resource, against others: [Resource]) throws(ValidationError) {
    guard let spec = try? r.decodeSpec(RouteSpec.self) else { return }
    let who = r.key.description
    guard others.contains(where: { $0.kind == .service && $0.metadata.name == spec.service }) else {
      throw ValidationError(resource: who, field: "spec.service", problem: "no service '\(spec.service)'")
    }
    for other in others where other.kind == .route {
      if (try? other.decodeSpec(RouteSpec.self))?.service == spec.service {
        throw ValidationError(
          resource: who, field: "spec.service",
          problem: "service \(spec.service) already has route \(other.metadata.name); edit that one")
      }
    }
  }

  /// Throws naming the first key of `value` (a mapping) that is not in `allowed`.
  static func refuseUnknown(
    _ value: JSONValue, allowed: Set<String>, at path: String, what: String,
    _ fail: (String, String) -> ValidationError
  ) throws(ValidationError) {
    if let unknown = value.keys.first(where: { !allowed.contains($0) }) {
      throw fail(
        "\(path).\(unknown)", "unknown field; \(what) has \(allowed.sorted().joined(separator: ", "))")
    }
  }
}
