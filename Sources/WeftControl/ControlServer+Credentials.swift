import Foundation
import Hummingbird
import WeftIdentity
import X509

/// `POST /v1/tokens`: what kind of token to make.
public struct TokenRequest: Codable, Sendable, Hashable {
  /// `admin` or `bootstrap`.
  public var role: TokenRole
  /// Seconds until it expires (nil: never; bootstrap tokens default to one hour).
  public var ttlSeconds: Double?
  /// How many times it may be used (nil: any; bootstrap tokens default to once).
  public var uses: Int?
  /// For a bootstrap token: the one host it may bootstrap.
  public var host: String?
  /// What it is for.
  public var description: String?

  /// Creates a request.
  public init(
    role: TokenRole, ttlSeconds: Double? = nil, uses: Int? = nil, host: String? = nil,
    description: String? = nil
  ) {
    self.role = role
    self.ttlSeconds = ttlSeconds
    self.uses = uses
    self.host = host
    self.description = description
  }
}

/// A new token: the only time its secret is shown.
public struct CreatedToken: Codable, Sendable, Hashable {
  /// `ID.SECRET`.
  public var token: String
  /// What the controller keeps of it.
  public var record: TokenRecord
}

/// A request for a host's or user's client certificate.
public struct CertificateRequest: Codable, Sendable, Hashable {
  /// The PKCS#10 request, PEM; the key stays with the requester.
  public var csr: String

  /// Creates a request.
  public init(csr: String) { self.csr = csr }
}

/// A client certificate and the control plane's CA to trust the controller by.
public struct ClientCertificate: Codable, Sendable, Hashable {
  /// Who it names (`host/NAME`, `user/NAME`).
  public var subject: String
  /// The chain, leaf first, PEM.
  public var chain: String
  /// The control plane's CA certificate, PEM.
  public var ca: String
  /// When the leaf expires.
  public var notAfter: Date
}

/// `POST /v1/{hosts,users}/NAME/revoke`: how many certificates stopped being honoured.
public struct Revocation: Codable, Sendable, Hashable {
  /// Who.
  public var subject: String
  /// Certificates revoked.
  public var revoked: Int
}

extension ControlServer {
  static func addCredentialRoutes(to v1: RouterGroup<ControlRequestContext>, auth: ControlAuth) {
    v1.post("tokens") { request, context in
      await Self.answer {
        try context.caller().requireAdmin("make tokens")
        let asked: TokenRequest
        do { asked = try await request.decode(as: TokenRequest.self, context: context) } catch {
          throw ControlError.invalid(
            "body is not {role: admin|bootstrap, ttlSeconds?, uses?, host?, description?}: \(error)")
        }
        if let uses = asked.uses, uses < 1 { throw ControlError.invalid("uses \(uses): must be 1 or more") }
        if let ttl = asked.ttlSeconds, ttl <= 0 {
          throw ControlError.invalid("ttlSeconds \(ttl): must be positive")
        }
        if asked.host != nil && asked.role != .bootstrap {
          throw ControlError.invalid("host: only a bootstrap token is made for one host")
        }
        let bootstrap = asked.role == .bootstrap
        let (token, record) = try await auth.registry.createToken(
          role: asked.role, ttl: asked.ttlSeconds ?? (bootstrap ? 3600 : nil),
          uses: asked.uses ?? (bootstrap ? 1 : nil), host: asked.host, description: asked.description)
        var shown = record
        shown.hash = nil
        return CreatedToken(token: token, record: shown)
      }
    }
    v1.get("tokens") { _, context in
      await Self.answer {
        try context.caller().requireAdmin("list tokens")
        return await auth.registry.tokens()
      }
    }
    v1.delete("tokens/:id") { _, context in
      await Self.answer {
        try context.caller().requireAdmin("delete tokens")
        let id = try context.parameters.require("id")
        guard try await auth.registry.deleteToken(id) else {
          throw ControlError.notFound("token \(id) not found")
        }
        return ["deleted": id]
      }
    }
    v1.post("hosts/:name/bootstrap") { request, context in
      await Self.answer {
        let name = try context.parameters.require("name")
        let caller = try context.caller()
        switch caller {
        case .admin: break
        case .bootstrap(let record):
          if let only = record.host, only != name {
            throw Principal.forbidden("bootstrap token \(record.id) is for host \(only), not \(name)")
          }
        case .host:
          throw Principal.forbidden(
            "\(caller) already has a certificate; renew it at /v1/hosts/\(name)/certificate")
        }
        let csr = try await Self.signingRequest(request, context: context, for: "host \(name)")
        if case .bootstrap(let record) = caller { try await auth.registry.consume(record.id) }
        return try await Self.issue(csr, for: .host(name), auth: auth, replacing: true)
      }
    }
    v1.post("hosts/:name/certificate") { request, context in
      await Self.answer {
        let name = try context.parameters.require("name")
        try context.caller().requireHost(name, "renew the certificate")
        let csr = try await Self.signingRequest(request, context: context, for: "host \(name)")
        return try await Self.issue(csr, for: .host(name), auth: auth, replacing: false)
      }
    }
    v1.post("users/:name/certificate") { request, context in
      await Self.answer {
        let name = try context.parameters.require("name")
        try context.caller().requireAdmin("issue user certificates")
        let csr = try await Self.signingRequest(request, context: context, for: "user \(name)")
        return try await Self.issue(csr, for: .user(name), auth: auth, replacing: false)
      }
    }
    for kind in ["hosts", "users"] {
      v1.post(RouterPath("\(kind)/:name/revoke")) { _, context in
        await Self.answer {
          let name = try context.parameters.require("name")
          try context.caller().requireAdmin("revoke certificates")
          let subject: ControlSubject = kind == "hosts" ? .host(name) : .user(name)
          return Revocation(subject: subject.description, revoked: try await auth.registry.revoke(subject))
        }
      }
    }
  }

  private static func signingRequest(
    _ request: Request, context: ControlRequestContext, for what: String
  ) async throws -> CertificateSigningRequest {
    let body: CertificateRequest
    do { body = try await request.decode(as: CertificateRequest.self, context: context) } catch {
      throw ControlError.invalid("\(what): body is not {csr}: \(error)")
    }
    let csr: CertificateSigningRequest
    do { csr = try CertificateSigningRequest(pemEncoded: body.csr) } catch {
      throw ControlError.invalid("\(what): csr is not a PEM certificate request: \(error)")
    }
    guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
      throw ControlError.invalid("\(what): the certificate request is not signed by its own key")
    }
    return csr
  }

  private static func issue(
    _ csr: CertificateSigningRequest, for subject: ControlSubject, auth: ControlAuth, replacing: Bool
  ) async throws -> ClientCertificate {
    guard let pki = auth.pki else {
      throw ControlError(status: 501, code: "no-ca", message: "this controller issues no client certificates")
    }
    let issued: IssuedCertificate
    do {
      issued = try pki.clientCertificate(csr, for: subject, lifetime: auth.clientCertificateLifetime)
    } catch let error as IdentityError {
      throw ControlError.invalid("\(subject): \(error.message)")
    }
    try await auth.registry.recordCertificate(
      issued.certificate.serialNumber.hex, notAfter: issued.certificate.notValidAfter, for: subject,
      replacing: replacing)
    return ClientCertificate(
      subject: subject.description, chain: try issued.pem(),
      ca: try pki.authority.certificate.serializeAsPEM().pemString + "\n",
      notAfter: issued.certificate.notValidAfter)
  }
}
