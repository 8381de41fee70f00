/// A CNI error, written to stdout as the spec's error object with a non-zero exit.
public struct CNIError: Error, Sendable, Codable, Equatable, CustomStringConvertible {
  /// The spec's well-known code (1-99 reserved by the spec; Weft uses only those).
  public var code: Int
  /// A short message.
  public var msg: String
  /// Longer details.
  public var details: String?

  /// Creates an error.
  public init(_ code: Int, _ msg: String, details: String? = nil) {
    self.code = code
    self.msg = msg
    self.details = details
  }

  /// Incompatible CNI version.
  public static let incompatibleVersion = 1
  /// Unsupported field in the network configuration.
  public static let unsupportedField = 2
  /// Container unknown or does not exist.
  public static let unknownContainer = 3
  /// Invalid necessary environment variables.
  public static let invalidEnvironment = 4
  /// I/O failure.
  public static let ioFailure = 5
  /// Failed to decode content.
  public static let decodeFailure = 6
  /// Invalid network configuration.
  public static let invalidConfig = 7
  /// Try again later.
  public static let tryAgainLater = 11
  /// The plugin is not available (STATUS).
  public static let notAvailable = 50

  /// `msg: details`.
  public var description: String { self.details.map { "\(self.msg): \($0)" } ?? self.msg }
}
