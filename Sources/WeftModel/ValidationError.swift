/// A resource that failed validation: which resource, which field, and what is wrong with it.
public struct ValidationError: Error, Sendable, Hashable, CustomStringConvertible {
  /// `Kind/name` of the resource (or `document N` when it has no name yet).
  public var resource: String
  /// The field's path, e.g. `spec.cidr`.
  public var field: String
  /// What is wrong, and what would be right.
  public var problem: String

  /// Creates an error.
  public init(resource: String, field: String, problem: String) {
    self.resource = resource
    self.field = field
    self.problem = problem
  }

  /// `Network/blue: spec.cidr: ...`.
  public var description: String { "\(self.resource): \(self.field): \(self.problem)" }
}
