import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WeftControl
import WeftModel

/// A client of the controller's HTTP API, used by the CLI and the host agents.
public struct ControlClient: Sendable {
  /// The controller's base URL, e.g. `http://127.0.0.1:7443`.
  public let baseURL: String
  /// The bearer token.
  public let token: String
  private let http: HTTPClient

  /// Creates a client; uses the shared HTTP client unless one is given.
  public init(baseURL: String, token: String, http: HTTPClient = .shared) {
    self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    self.token = token
    self.http = http
  }

  /// Every resource of a kind.
  public func list(_ kind: ResourceKind) async throws -> ResourceList {
    try await self.call(.GET, "/v1/\(kind.plural)")
  }

  /// One resource, or nil when there is none.
  public func get(_ key: ResourceKey) async throws -> Resource? {
    do {
      return try await self.call(.GET, "/v1/\(key.kind.plural)/\(key.name)")
    } catch let e as ControlError where e.status == 404 {
      return nil
    }
  }

  /// Creates or updates resources; the controller validates all before writing any.
  public func apply(_ resources: [Resource]) async throws -> ResourceList {
    try await self.call(.POST, "/v1/apply", body: ResourceList(items: resources))
  }

  /// Deletes a resource; returns its last state.
  @discardableResult
  public func delete(_ key: ResourceKey) async throws -> Resource {
    try await self.call(.DELETE, "/v1/\(key.kind.plural)/\(key.name)")
  }

  /// Registers a host (agents only); returns it with its leases.
  public func join(host name: String, spec: HostSpec) async throws -> Resource {
    try await self.call(.POST, "/v1/hosts/\(name)/join", body: spec)
  }

  /// The endpoints of a service: the workloads that match its selector, with their addresses.
  public func endpoints(of service: String) async throws -> [ServiceEndpoint] {
    try await self.call(.GET, "/v1/services/\(service)/endpoints")
  }

  /// Records a workload's health for a service (agents only).
  @discardableResult
  public func reportHealth(workload: String, service: String, healthy: Bool) async throws -> Resource {
    try await self.call(
      .POST, "/v1/workloads/\(workload)/health", body: HealthReport(service: service, healthy: healthy))
  }

  /// Reports a host alive (agents only).
  @discardableResult
  public func heartbeat(host name: String) async throws -> Resource {
    try await self.call(.POST, "/v1/hosts/\(name)/heartbeat")
  }

  /// Streams changes after `revision`: events, then bookmarks while nothing changes. The stream
  /// ends with an error when the connection drops; callers resume from the last revision seen.
  public func watch(after revision: Int64) async throws -> AsyncThrowingStream<WatchMessage, any Error> {
    var request = HTTPClientRequest(url: "\(self.baseURL)/v1/watch?revision=\(revision)")
    request.headers.add(name: "Authorization", value: "Bearer \(self.token)")
    let response: HTTPClientResponse
    do {
      response = try await self.http.execute(request, timeout: .hours(24 * 365))
    } catch {
      throw self.unreachable(error)
    }
    guard response.status == .ok else {
      let body = try await response.body.collect(upTo: 1 << 20)
      throw Self.decodeError(body, status: response.status)
    }
    let (stream, continuation) = AsyncThrowingStream<WatchMessage, any Error>.makeStream()
    let task = Task {
      var pending = ByteBuffer()
      do {
        for try await chunk in response.body {
          var chunk = chunk
          pending.writeBuffer(&chunk)
          while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - pending.readerIndex
            let line = pending.readSlice(length: length)!
            pending.moveReaderIndex(forwardBy: 1)
            continuation.yield(try JSONDecoder().decode(WatchMessage.self, from: Data(buffer: line)))
          }
          pending.discardReadBytes()
        }
        continuation.finish(
          throwing: ControlError(status: 0, code: "disconnected", message: "watch stream ended"))
      } catch {
        continuation.finish(throwing: error)
      }
    }
    continuation.onTermination = { _ in task.cancel() }
    return stream
  }

  /// Asks the controller's CA to sign a workload's certificate request.
  public func sign(_ request: SigningRequest) async throws -> SignedIdentity {
    try await self.call(.POST, "/v1/identity/sign", body: request)
  }

  /// The mesh's trust domain and trust bundle.
  public func trust() async throws -> MeshTrust {
    try await self.call(.GET, "/v1/identity/trust")
  }

  private func call<T: Decodable>(_ method: HTTPMethod, _ path: String) async throws -> T {
    try await self.call(method, path, body: Optional<ResourceList>.none)
  }

  private func call<T: Decodable, B: Encodable>(_ method: HTTPMethod, _ path: String, body: B?) async throws
    -> T
  {
    var request = HTTPClientRequest(url: self.baseURL + path)
    request.method = method
    request.headers.add(name: "Authorization", value: "Bearer \(self.token)")
    if let body {
      request.headers.add(name: "Content-Type", value: "application/json")
      request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
    }
    let response: HTTPClientResponse
    do {
      response = try await self.http.execute(request, timeout: .seconds(30))
    } catch {
      throw self.unreachable(error)
    }
    let data = try await response.body.collect(upTo: 64 << 20)
    guard response.status == .ok else { throw Self.decodeError(data, status: response.status) }
    return try JSONDecoder().decode(T.self, from: Data(buffer: data))
  }

  private func unreachable(_ error: any Error) -> ControlError {
    ControlError(
      status: 0, code: "unreachable",
      message:
        "cannot reach the controller at \(self.baseURL) (\(error)); is it running? (--controller or WEFT_CONTROLLER)"
    )
  }

  private static func decodeError(_ body: ByteBuffer, status: HTTPResponseStatus) -> ControlError {
    if let e = try? JSONDecoder().decode(ErrorBody.self, from: Data(buffer: body)) { return e.error }
    return ControlError(status: Int(status.code), code: "http", message: "controller answered \(status)")
  }
}
