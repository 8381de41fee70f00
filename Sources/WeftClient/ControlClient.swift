import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WeftControl
import WeftModel

/// A client of the controller's HTTP API, used by the CLI and the host agents.
public struct ControlClient: Sendable {
  /// The controller's base URL, e.g. `https://127.0.0.1:7443` or `https+unix://...`.
  public let baseURL: String
  /// The bearer token ("" when the client authenticates with a certificate only).
  public var token: String { self.transport.credentials.token ?? "" }
  private let transport: ControlTransport

  /// Creates a plain client with a token; uses the shared HTTP client unless one is given.
  public init(baseURL: String, token: String, http: HTTPClient = .shared) {
    self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    self.transport = ControlTransport(http: http, credentials: ClientCredentials(token: token), owned: false)
  }

  /// Creates a client with credentials: TLS trusting `credentials.ca`, presenting the client
  /// certificate when there is one, and the token when there is one.
  public init(baseURL: String, credentials: ClientCredentials) throws {
    self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    self.transport = ControlTransport(
      http: try credentials.httpClient(unixSocket: baseURL.hasPrefix("https+unix:")),
      credentials: credentials,
      owned: true)
  }

  /// The credentials in use.
  public var credentials: ClientCredentials { self.transport.credentials }

  /// Switches to new credentials (a renewed certificate): requests from now on use them; the
  /// old connections are closed a minute later, so a watch reconnects with the new ones.
  public func use(_ credentials: ClientCredentials) throws {
    let http = try credentials.httpClient(unixSocket: self.baseURL.hasPrefix("https+unix:"))
    self.transport.replace(http: http, credentials: credentials)
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
    self.authorize(&request)
    let response: HTTPClientResponse
    do {
      response = try await self.transport.http.execute(request, timeout: .hours(24 * 365))
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

  /// Where the mesh's CA stands: the signer, the roots, when old roots may be retired.
  public func caStatus() async throws -> CAStatus {
    try await self.call(.GET, "/v1/identity/ca")
  }

  /// Starts a CA rotation (operators only): a new root, trusted at once, signing after the
  /// propagation time.
  public func rotateCA() async throws -> CAStatus {
    try await self.call(.POST, "/v1/identity/rotate")
  }

  /// Retires every root but the signer's (operators only); `force` even while certificates from
  /// the old roots may still be valid.
  public func retireCA(force: Bool = false) async throws -> CAStatus {
    try await self.call(.POST, force ? "/v1/identity/retire?force=true" : "/v1/identity/retire")
  }

  func call<T: Decodable>(_ method: HTTPMethod, _ path: String) async throws -> T {
    try await self.call(method, path, body: Optional<ResourceList>.none)
  }

  func call<T: Decodable, B: Encodable>(_ method: HTTPMethod, _ path: String, body: B?) async throws
    -> T
  {
    var request = HTTPClientRequest(url: self.baseURL + path)
    request.method = method
    self.authorize(&request)
    if let body {
      request.headers.add(name: "Content-Type", value: "application/json")
      request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
    }
    let response: HTTPClientResponse
    do {
      response = try await self.transport.http.execute(request, timeout: .seconds(30))
    } catch {
      throw self.unreachable(error)
    }
    let data = try await response.body.collect(upTo: 64 << 20)
    guard response.status == .ok else { throw Self.decodeError(data, status: response.status) }
    return try JSONDecoder().decode(T.self, from: Data(buffer: data))
  }

  private func authorize(_ request: inout HTTPClientRequest) {
    if let token = self.transport.credentials.token, !token.isEmpty {
      request.headers.add(name: "Authorization", value: "Bearer \(token)")
    }
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

extension ControlClient {
  /// Makes a token (operators only); its secret is in the answer and nowhere else.
  public func createToken(_ request: TokenRequest) async throws -> CreatedToken {
    try await self.call(.POST, "/v1/tokens", body: request)
  }

  /// The tokens, without secrets.
  public func tokens() async throws -> [TokenRecord] {
    try await self.call(.GET, "/v1/tokens")
  }

  /// Deletes a token.
  public func deleteToken(_ id: String) async throws {
    let _: [String: String] = try await self.call(.DELETE, "/v1/tokens/\(id)")
  }

  /// A host's first certificate, with a bootstrap token.
  public func bootstrap(host name: String, csr: String) async throws -> ClientCertificate {
    try await self.call(.POST, "/v1/hosts/\(name)/bootstrap", body: CertificateRequest(csr: csr))
  }

  /// A renewed host certificate, with the current one.
  public func renewCertificate(host name: String, csr: String) async throws -> ClientCertificate {
    try await self.call(.POST, "/v1/hosts/\(name)/certificate", body: CertificateRequest(csr: csr))
  }

  /// An operator's client certificate (operators only).
  public func userCertificate(_ name: String, csr: String) async throws -> ClientCertificate {
    try await self.call(.POST, "/v1/users/\(name)/certificate", body: CertificateRequest(csr: csr))
  }

  /// Revokes every certificate of a host (`hosts`) or user (`users`).
  public func revoke(_ kind: String, _ name: String) async throws -> Revocation {
    try await self.call(.POST, "/v1/\(kind)/\(name)/revoke")
  }
}
