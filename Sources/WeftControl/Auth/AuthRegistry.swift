import Foundation
import WeftIdentity

/// What a token may do.
public enum TokenRole: String, Codable, Sendable {
  /// Everything: an operator's token.
  case admin
  /// Only a host's first certificate (`POST /v1/hosts/NAME/bootstrap`).
  case bootstrap
}

/// A token as the controller keeps it: never the secret, only its hash.
public struct TokenRecord: Codable, Sendable, Hashable {
  /// The token's public id.
  public var id: String
  /// SHA-256 of the secret, hex (absent from API answers).
  public var hash: String?
  /// What it may do.
  public var role: TokenRole
  /// A bootstrap token made for one host only.
  public var host: String?
  /// What it is for, from its maker.
  public var description: String?
  /// When it was made.
  public var created: Date
  /// When it stops working (nil: never).
  public var expires: Date?
  /// Uses left (nil: any number).
  public var usesLeft: Int?
}

/// A client certificate the controller issued and still honours.
public struct IssuedSerial: Codable, Sendable, Hashable {
  /// The serial number, hex.
  public var serial: String
  /// When it expires.
  public var notAfter: Date
}

/// The controller's credentials: the tokens (hashed) and, per host and operator, the client
/// certificates it issued and has not revoked. Kept in one JSON file, mode 0600, rewritten
/// atomically on every change; nil path keeps it in memory (tests).
public actor AuthRegistry {
  struct State: Codable {
    var tokens: [TokenRecord] = []
    /// By subject (`host/NAME`, `user/NAME`).
    var certificates: [String: [IssuedSerial]] = [:]
  }

  private let path: String?
  private var state = State()
  /// Hashes of tokens given on the command line or in the environment: admin, never written.
  private var operatorHashes: Set<String> = []

  /// Opens the registry at `path` (created on first change), or an in-memory one;
  /// `operatorTokens` are admin tokens for this run, kept hashed in memory and never written.
  public init(path: String?, operatorTokens: [String] = []) throws {
    self.path = path
    self.operatorHashes = Set(operatorTokens.map(AccessToken.hash))
    if let path, FileManager.default.fileExists(atPath: path) {
      do {
        self.state = try JSONDecoder.dates.decode(
          State.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
      } catch {
        throw ControlError(
          status: 500, code: "internal", message: "\(path) is not a credentials file: \(error)")
      }
    }
  }

  /// Whether any admin credential exists (an operator token or a stored admin token).
  public var hasAdminToken: Bool {
    !self.operatorHashes.isEmpty || self.state.tokens.contains { $0.role == .admin }
  }

  /// Makes a token; the answer is the only place its secret ever appears.
  public func createToken(
    role: TokenRole, ttl: TimeInterval? = nil, uses: Int? = nil, host: String? = nil,
    description: String? = nil, now: Date = Date()
  ) throws -> (token: String, record: TokenRecord) {
    let token = AccessToken.generate()
    let record = TokenRecord(
      id: token.id, hash: token.secretHash, role: role, host: host, description: description, created: now,
      expires: ttl.map { now.addingTimeInterval($0) }, usesLeft: uses)
    self.state.tokens.append(record)
    try self.save()
    return (token.text, record)
  }

  /// The record of a valid token (known, matching, not expired, uses left), or why not.
  public func authenticate(_ text: String, now: Date = Date()) -> Result<TokenRecord, AuthFailure> {
    if self.operatorHashes.contains(where: { AccessToken.same($0, AccessToken.hash(text)) }) {
      return .success(
        TokenRecord(id: "operator", role: .admin, description: "--token / WEFT_TOKEN", created: now))
    }
    guard let token = AccessToken(text) else {
      return .failure(.init("the token is not valid for this controller"))
    }
    guard let record = self.state.tokens.first(where: { $0.id == token.id }),
      AccessToken.same(record.hash ?? "", token.secretHash)
    else { return .failure(.init("the token is not valid for this controller")) }
    if let expires = record.expires, expires <= now {
      return .failure(.init("token \(record.id) expired at \(expires)"))
    }
    if let uses = record.usesLeft, uses <= 0 {
      return .failure(.init("token \(record.id) has been used up"))
    }
    return .success(record)
  }

  /// Spends one use of a token (a single-use token is then gone).
  public func consume(_ id: String) throws {
    guard let i = self.state.tokens.firstIndex(where: { $0.id == id }),
      let uses = self.state.tokens[i].usesLeft
    else { return }
    if uses <= 1 {
      self.state.tokens.remove(at: i)
    } else {
      self.state.tokens[i].usesLeft = uses - 1
    }
    try self.save()
  }

  /// The tokens, without hashes.
  public func tokens() -> [TokenRecord] {
    self.state.tokens.map {
      var r = $0; r.hash = nil; return r
    }
  }

  /// Deletes a token; false when there was none.
  public func deleteToken(_ id: String) throws -> Bool {
    let before = self.state.tokens.count
    self.state.tokens.removeAll { $0.id == id }
    guard self.state.tokens.count != before else { return false }
    try self.save()
    return true
  }

  /// Records a certificate issued to `subject`. `replacing` revokes the ones before (a new
  /// bootstrap); otherwise they stay valid until they expire (a renewal).
  public func recordCertificate(
    _ serial: String, notAfter: Date, for subject: ControlSubject, replacing: Bool, now: Date = Date()
  ) throws {
    var list =
      replacing ? [] : (self.state.certificates[subject.description] ?? []).filter { $0.notAfter > now }
    list.append(IssuedSerial(serial: serial, notAfter: notAfter))
    self.state.certificates[subject.description] = list
    try self.save()
  }

  /// Whether a certificate of `subject` with `serial` is still honoured.
  public func honours(_ serial: String, of subject: ControlSubject, now: Date = Date()) -> Bool {
    (self.state.certificates[subject.description] ?? []).contains { $0.serial == serial && $0.notAfter > now }
  }

  /// Revokes every certificate of `subject`; returns how many were honoured.
  public func revoke(_ subject: ControlSubject) throws -> Int {
    let count = self.state.certificates[subject.description]?.count ?? 0
    self.state.certificates[subject.description] = nil
    try self.save()
    return count
  }

  private func save() throws {
    guard let path else { return }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    let text = String(decoding: try encoder.encode(self.state), as: UTF8.self)
    try CAStore.write(text + "\n", to: URL(fileURLWithPath: path), mode: 0o600)
  }
}

/// Why a credential was refused (logged and answered with 401).
public struct AuthFailure: Error, Sendable, Hashable {
  /// The reason.
  public var reason: String

  /// Creates one.
  public init(_ reason: String) { self.reason = reason }
}

extension JSONDecoder {
  static var dates: JSONDecoder {
    let d = JSONDecoder()
    d.dateDecodingStrategy = .iso8601
    return d
  }
}
