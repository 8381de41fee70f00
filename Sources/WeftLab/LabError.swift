/// Why a lab command failed, with what to do about it.
public struct LabError: Error, Sendable, CustomStringConvertible {
  /// A stable kind of failure.
  public enum Code: String, Sendable {
    /// Not running with the privileges namespaces need.
    case notPrivileged
    /// The name or a parameter is not acceptable.
    case badInput
    /// A lab of that name exists already.
    case exists
    /// No lab of that name.
    case notFound
    /// A kernel or system call failed.
    case system
  }

  /// The kind of failure.
  public var code: Code
  /// What failed, for whom, and what to do.
  public var message: String

  /// Creates an error.
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// The message.
  public var description: String { self.message }
}
