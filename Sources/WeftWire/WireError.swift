/// An error from a WeftWire decoder: what was wrong with the input, and where.
///
/// Decoders never trap on bad input; they throw one of these. `code` is stable and meant for
/// counters and tests; `description` is for people.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The stable kind of failure.
  public enum Code: String, Hashable, Sendable {
    /// The input ended before the structure it claims to hold.
    case truncated
    /// A length field claims more or fewer bytes than are consistent with the input.
    case badLength
    /// A field holds a value this codec does not accept (wrong version, reserved flag set, ...).
    case badField
    /// A checksum did not verify.
    case badChecksum
    /// The input is well formed but of a kind this codec does not handle.
    case unsupported
    /// Text could not be parsed (an address, a prefix).
    case badText
  }

  /// The stable kind of failure.
  public var code: Code
  /// The layer that failed, e.g. `"ipv4"` or `"vxlan"`.
  public var layer: String
  /// What was wrong, in words.
  public var detail: String

  /// Creates an error for `layer` with a stable `code` and a human-readable `detail`.
  public init(_ code: Code, layer: String, _ detail: String) {
    self.code = code
    self.layer = layer
    self.detail = detail
  }

  /// `layer: code: detail`.
  public var description: String { "\(self.layer): \(self.code.rawValue): \(self.detail)" }
}
