import WeftManifest
import WeftModel
import WeftStore

/// An API error: an HTTP status, a stable code and a message naming the object and the problem.
public struct ControlError: Error, Sendable, Codable, CustomStringConvertible {
  /// The HTTP status to answer with.
  public var status: Int
  /// A stable code: `invalid`, `unauthorized`, `notFound`, `conflict`, `compacted`, `internal`.
  public var code: String
  /// What went wrong.
  public var message: String

  /// Creates an error.
  public init(status: Int, code: String, message: String) {
    self.status = status
    self.code = code
    self.message = message
  }

  /// A bad request.
  public static func invalid(_ m: String) -> ControlError {
    ControlError(status: 400, code: "invalid", message: m)
  }
  /// No such object.
  public static func notFound(_ m: String) -> ControlError {
    ControlError(status: 404, code: "notFound", message: m)
  }

  /// Maps store and validation errors to API errors.
  public init(_ error: any Error) {
    switch error {
    case let e as ControlError: self = e
    case let e as ValidationError: self = .invalid(e.description)
    case let e as Manifest.Error: self = .invalid(e.description)
    case let e as StoreError:
      switch e.code {
      case .conflict: self.init(status: 409, code: "conflict", message: e.message)
      case .notFound: self = .notFound(e.message)
      case .compacted: self.init(status: 410, code: "compacted", message: e.message)
      case .backend: self.init(status: 500, code: "internal", message: e.message)
      }
    default: self.init(status: 500, code: "internal", message: "\(error)")
    }
  }

  /// The message.
  public var description: String { self.message }
}
