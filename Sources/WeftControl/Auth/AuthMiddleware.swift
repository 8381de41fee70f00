import Foundation
import Hummingbird
import NIOCore
import NIOSSL
import WeftIdentity
import X509

/// Authenticates every /v1 request: a client certificate from the control plane's CA that the
/// controller still honours (a host or an operator), else a bearer token. Refusals are 401,
/// counted per source address and logged; a source that failed too often gets 429 without its
/// credentials being looked at.
struct AuthMiddleware: RouterMiddleware {
  typealias Context = ControlRequestContext
  let auth: ControlAuth

  func handle(
    _ request: Request, context: Context, next: (Request, Context) async throws -> Response
  ) async throws -> Response {
    let source = Self.source(of: context.channel)
    if let wait = await self.auth.guardian.lockedOut(source) {
      let seconds = Int(wait.rounded(.up))
      var response = ControlServer.errorResponse(
        ControlError(
          status: 429, code: "tooManyFailures",
          message: "too many failed authentications from \(source); try again in \(seconds) s"))
      response.headers[.retryAfter] = "\(seconds)"
      return response
    }
    switch await self.authenticate(request, channel: context.channel) {
    case .success(let principal):
      var context = context
      context.principal = principal
      return try await next(request, context)
    case .failure(let failure):
      await self.auth.guardian.failed(source, "\(request.method) \(request.uri.path): \(failure.reason)")
      return ControlServer.errorResponse(
        ControlError(status: 401, code: "unauthorized", message: failure.reason))
    }
  }

  private func authenticate(_ request: Request, channel: any Channel) async -> Result<Principal, AuthFailure>
  {
    if let der = await Self.peerCertificate(channel) {
      return await self.principal(certificate: der)
    }
    let header = request.headers[.authorization] ?? ""
    guard header.hasPrefix("Bearer "), case let token = String(header.dropFirst(7)), !token.isEmpty else {
      return .failure(
        AuthFailure(
          header.isEmpty
            ? "no token: pass --token or set WEFT_TOKEN, or use a client certificate (--cert, --key)"
            : "the Authorization header is not 'Bearer TOKEN'"))
    }
    switch await self.auth.registry.authenticate(token) {
    case .success(let record):
      return .success(record.role == .admin ? .admin("token \(record.id)") : .bootstrap(record))
    case .failure(let failure):
      return .failure(failure)
    }
  }

  /// The principal a verified client certificate names, if the controller still honours it.
  private func principal(certificate der: [UInt8]) async -> Result<Principal, AuthFailure> {
    guard let pki = self.auth.pki, let certificate = try? Certificate(derEncoded: der),
      let subject = ControlSubject(certificate: certificate, trustDomain: pki.authority.trustDomain)
    else { return .failure(AuthFailure("the client certificate names no host or user of this controller")) }
    let serial = certificate.serialNumber.hex
    guard await self.auth.registry.honours(serial, of: subject) else {
      return .failure(AuthFailure("the certificate of \(subject) (serial \(serial)) is revoked or replaced"))
    }
    switch subject {
    case .host(let name): return .success(.host(name))
    case .user(let name): return .success(.admin("user \(name)"))
    case .controller: return .failure(AuthFailure("the controller's own certificate is not a client's"))
    }
  }

  /// The peer's certificate (DER) when the connection is TLS and the peer sent one; the TLS
  /// handshake has already checked it chains to the control plane's CA.
  static func peerCertificate(_ channel: any Channel) async -> [UInt8]? {
    try? await channel.eventLoop.submit { () -> [UInt8]? in
      try channel.pipeline.syncOperations.nioSSL_peerCertificate()?.toDERBytes()
    }.get()
  }

  /// The caller's address, which failures are counted against.
  static func source(of channel: any Channel) -> String {
    switch channel.remoteAddress {
    case .v4(let a)?: a.host
    case .v6(let a)?: a.host
    case .unixDomainSocket?: "unix socket"
    case nil: "unknown"
    }
  }
}
