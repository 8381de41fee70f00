import Hummingbird
import NIOCore

/// The request context of the controller's API: the connection (for its TLS peer certificate)
/// and, once ``AuthMiddleware`` has run, who is calling.
public struct ControlRequestContext: RequestContext {
  /// Hummingbird's own state.
  public var coreContext: CoreRequestContextStorage
  /// The connection the request came on.
  public let channel: any Channel
  /// The authenticated caller (nil before the middleware, and on `/healthz`).
  public var principal: Principal?

  /// Creates a context for a request on `source.channel`.
  public init(source: ApplicationRequestContextSource) {
    self.coreContext = .init(source: source)
    self.channel = source.channel
    self.principal = nil
  }

  /// The caller; 401 when no one authenticated (a route outside the middleware).
  public func caller() throws -> Principal {
    guard let principal else {
      throw ControlError(status: 401, code: "unauthorized", message: "no credentials")
    }
    return principal
  }
}
