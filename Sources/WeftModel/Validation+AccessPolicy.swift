extension Validation {
  /// Checks an AccessPolicy on its own: known fields at every level, one scope, an action, at
  /// least one rule, well-formed identities, paths and methods.
  static func validateAccessPolicy(_ r: Resource, _ fail: (String, String) -> ValidationError)
    throws(ValidationError)
  {
    if case .array(let rules)? = r.spec["rules"] {
      for (i, rule) in rules.enumerated() {
        try Self.refuseUnknown(rule, allowed: AccessRule.fields, at: "spec.rules[\(i)]", what: "a rule", fail)
        if let from = rule["from"] {
          try Self.refuseUnknown(
            from, allowed: AccessSource.fields, at: "spec.rules[\(i)].from", what: "from", fail)
        }
        if let to = rule["to"] {
          try Self.refuseUnknown(
            to, allowed: AccessOperation.fields, at: "spec.rules[\(i)].to", what: "to", fail)
        }
      }
    }
    let spec: AccessPolicySpec
    do { spec = try r.decodeSpec() } catch { throw fail("spec", Self.describe(error)) }
    if let problem = spec.problem { throw fail(problem.field, problem.message) }
  }
}
