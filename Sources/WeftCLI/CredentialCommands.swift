import ArgumentParser
import Foundation
import WeftClient
import WeftControl
import WeftIdentity

/// `weft token create|list|delete`: bearer tokens (operators only).
struct TokenCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "token", abstract: "Make, list and delete API tokens.",
    subcommands: [Create.self, List.self, Delete.self])

  /// `weft token create`: prints the new token, the only time its secret is shown.
  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Make a token and print it (the controller keeps only its hash).",
      discussion: """
        A bootstrap token lets one agent get its host certificate: by default once, within an
        hour, for the host given with --host (any host without it). An admin token can do
        everything, until deleted.
        """)

    @Flag(help: "A bootstrap token for an agent's first certificate (default: an admin token).")
    var bootstrap = false

    @Option(help: "The one host a bootstrap token may bootstrap.")
    var host: String?

    @Option(help: "How long it lasts: a number of seconds, or with s, m, h or d (bootstrap default 1h).")
    var ttl: String?

    @Option(help: "How many times it may be used (bootstrap default 1).")
    var uses: Int?

    @Option(help: "What it is for.")
    var description: String?

    @OptionGroup var client: ClientOptions

    func run() async throws {
      let seconds = try self.ttl.map(Self.seconds)
      let made = try await reportingControlErrors {
        try await self.client.client().createToken(
          TokenRequest(
            role: self.bootstrap ? .bootstrap : .admin, ttlSeconds: seconds, uses: self.uses, host: self.host,
            description: self.description))
      }
      print(made.token)
    }

    static func seconds(_ text: String) throws -> Double {
      let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
      if let unit = text.last.flatMap({ units[$0] }), let n = Double(text.dropLast()), n > 0 {
        return n * unit
      }
      if let n = Double(text), n > 0 { return n }
      throw ValidationError("--ttl '\(text)' is not a duration such as 600, 10m, 1h or 7d")
    }
  }

  /// `weft token list`.
  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")

    @OptionGroup var client: ClientOptions

    func run() async throws {
      let tokens = try await reportingControlErrors { try await self.client.client().tokens() }
      let rows = tokens.map { t in
        [
          t.id, t.role.rawValue, t.host ?? "-", t.expires.map { "\($0)" } ?? "never",
          t.usesLeft.map(String.init) ?? "-", t.description ?? "",
        ]
      }
      print(
        ResourceTable.align([["ID", "ROLE", "HOST", "EXPIRES", "USES LEFT", "DESCRIPTION"]] + rows),
        terminator: "")
    }
  }

  /// `weft token delete ID`.
  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a token: it stops working at once.")

    @Argument(help: "The token's id (the part before the dot).")
    var id: String

    @OptionGroup var client: ClientOptions

    func run() async throws {
      try await reportingControlErrors { try await self.client.client().deleteToken(self.id) }
      print("token \(self.id) deleted")
    }
  }
}

/// `weft certificate issue|revoke`: operators' client certificates, and revoking a host's or a
/// user's certificates.
struct CertificateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "certificate", abstract: "Issue operators' client certificates; revoke hosts' and users'.",
    subcommands: [Issue.self, Revoke.self])

  /// `weft certificate issue --user NAME --out DIR`.
  struct Issue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Make a key here and get an operator's client certificate for it.",
      discussion:
        "Writes DIR/NAME-key.pem (mode 0600), DIR/NAME.pem and DIR/ca.pem; use them with --cert, --key, --ca."
    )

    @Option(help: "The operator's name.")
    var user: String

    @Option(help: "The directory to write the key and certificates to.")
    var out: String

    @OptionGroup var client: ClientOptions

    func run() async throws {
      let (key, request) = try WorkloadCredentials.request(for: self.user)
      let issued = try await reportingControlErrors {
        try await self.client.client().userCertificate(self.user, csr: try request.serializeAsPEM().pemString)
      }
      try FileManager.default.createDirectory(atPath: self.out, withIntermediateDirectories: true)
      let dir = URL(fileURLWithPath: self.out)
      try CAStore.write(
        try key.serializeAsPEM().pemString + "\n", to: dir.appendingPathComponent("\(self.user)-key.pem"),
        mode: 0o600)
      try CAStore.write(issued.chain, to: dir.appendingPathComponent("\(self.user).pem"), mode: 0o644)
      try CAStore.write(issued.ca, to: dir.appendingPathComponent("ca.pem"), mode: 0o644)
      print(
        "\(issued.subject): \(self.out)/\(self.user).pem and \(self.user)-key.pem, valid until \(issued.notAfter)"
      )
    }
  }

  /// `weft certificate revoke --host NAME | --user NAME`.
  struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Revoke every certificate of a host or a user: it can neither read nor write from now on.",
      discussion: "A revoked host's agent needs a new bootstrap token to come back.")

    @Option(help: "The host.")
    var host: String?

    @Option(help: "The user.")
    var user: String?

    @OptionGroup var client: ClientOptions

    func validate() throws {
      guard (self.host == nil) != (self.user == nil) else {
        throw ValidationError("give exactly one of --host and --user")
      }
    }

    func run() async throws {
      let (kind, name) = self.host.map { ("hosts", $0) } ?? ("users", self.user!)
      let done = try await reportingControlErrors { try await self.client.client().revoke(kind, name) }
      print("\(done.subject): \(done.revoked) certificate(s) revoked")
    }
  }
}

/// Runs `body`, turning a controller's error into one `weft: ...` line and exit status 1.
func reportingControlErrors<T>(_ body: () async throws -> T) async throws -> T {
  do { return try await body() } catch let e as ControlError {
    throw fail(e.message)
  }
}
