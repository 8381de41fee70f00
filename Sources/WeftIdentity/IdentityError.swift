/// Why an identity operation failed: a stable code, and what went wrong for which object.
public struct IdentityError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What kind of failure.
  public enum Code: String, Sendable, Hashable {
    /// A certificate, key or request could not be read.
    case malformed
    /// A signing request's signature does not match its key.
    case badSignature
    /// A certificate is not (or no longer, or not yet) valid, or does not chain to the bundle.
    case untrusted
    /// The certificate is valid but names another identity than the one required.
    case wrongIdentity
    /// The CA files on disk are missing a part or unreadable.
    case store
  }

  /// The code.
  public var code: Code
  /// What failed, for which object, and what to do.
  public var message: String

  /// Creates an error.
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// `code: message`.
  public var description: String { "\(self.code.rawValue): \(self.message)" }
}
