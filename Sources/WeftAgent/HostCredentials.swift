import Foundation
import WeftClient
import WeftControl
import WeftIdentity
import X509

/// The host's client certificate for the controller, kept in the agent's state directory:
/// `host-key.pem` (mode 0600, made here and never sent), `host.pem` (the chain) and
/// `control-ca.pem` (the control plane's CA, which the controller is trusted by). The first
/// certificate comes with a bootstrap token; after that the agent renews it half-way through
/// its life with the certificate itself.
public struct HostCredentials: Sendable {
  /// The state directory.
  public let directory: String
  /// The host's name.
  public let host: String

  /// Credentials of `host` kept in `directory`.
  public init(directory: String, host: String) {
    self.directory = directory
    self.host = host
  }

  var keyPath: String { "\(self.directory)/host-key.pem" }
  var chainPath: String { "\(self.directory)/host.pem" }
  var caPath: String { "\(self.directory)/control-ca.pem" }

  /// The stored credentials when they are there and not expired; else a first certificate
  /// from the controller at `url` with `bootstrapToken`, trusting the controller by `ca`
  /// (PEM; the stored CA when nil). Errors say what is missing.
  public func obtain(controller url: String, bootstrapToken: String?, ca: String?, now: Date = Date())
    async throws -> ClientCredentials
  {
    let storedCA = try? String(contentsOfFile: self.caPath, encoding: .utf8)
    if let stored = try? self.load(), let leaf = stored.chain.first {
      if leaf.notValidAfter > now {
        let pem = try stored.pem()
        return ClientCredentials(certificateChain: pem.chain, privateKey: pem.key, ca: ca ?? storedCA)
      }
      guard bootstrapToken != nil else {
        throw ClientCredentialsError(
          "the host certificate in \(self.chainPath) expired at \(leaf.notValidAfter); give a new bootstrap token (weft token create --bootstrap --host \(self.host))"
        )
      }
    }
    guard let bootstrapToken, !bootstrapToken.isEmpty else {
      throw ClientCredentialsError(
        "host \(self.host) has no certificate in \(self.directory): give a bootstrap token (--bootstrap-token or WEFT_BOOTSTRAP_TOKEN; an operator makes one with: weft token create --bootstrap --host \(self.host))"
      )
    }
    guard let trusted = ca ?? storedCA else {
      throw ClientCredentialsError(
        "no CA to trust the controller by: give --ca (or WEFT_CA), the controller's DATA/control-ca/ca.pem")
    }
    let bootstrap = try ControlClient(
      baseURL: url, credentials: ClientCredentials(token: bootstrapToken, ca: trusted))
    let (key, request) = try WorkloadCredentials.request(for: self.host)
    let answer = try await bootstrap.bootstrap(host: self.host, csr: try request.serializeAsPEM().pemString)
    return try self.store(key: key, answer: answer)
  }

  /// Renews the certificate through `client` (which presents the current one) and switches
  /// `client` to the new one; returns when to renew next.
  @discardableResult
  public func renew(through client: ControlClient) async throws -> Date {
    let (key, request) = try WorkloadCredentials.request(for: self.host)
    let answer = try await client.renewCertificate(
      host: self.host, csr: try request.serializeAsPEM().pemString)
    try client.use(try self.store(key: key, answer: answer))
    return try self.renewAt()
  }

  /// Half-way through the stored certificate's life.
  public func renewAt() throws -> Date { try self.load().renewAt }

  /// Renews whenever due until cancelled, retrying a failed renewal every minute.
  public func renewLoop(client: ControlClient, log: @escaping @Sendable (String) -> Void) async {
    while !Task.isCancelled {
      let due = (try? self.renewAt()) ?? Date()
      let wait = max(1, min(due.timeIntervalSinceNow, 86_400))
      try? await Task.sleep(for: .seconds(wait))
      guard !Task.isCancelled, Date() >= due else { continue }
      do {
        let next = try await self.renew(through: client)
        log("host certificate renewed; next renewal at \(next)")
      } catch {
        log("renewing the host certificate failed: \(error); retrying in 60 s")
        try? await Task.sleep(for: .seconds(60))
      }
    }
  }

  private func load() throws -> WorkloadCredentials {
    let key = try Certificate.PrivateKey(
      pemEncoded: try String(contentsOfFile: self.keyPath, encoding: .utf8))
    let chain = try TrustBundle.certificates(
      pem: try String(contentsOfFile: self.chainPath, encoding: .utf8), what: self.chainPath)
    return try WorkloadCredentials(key: key, chain: chain)
  }

  private func store(key: Certificate.PrivateKey, answer: ClientCertificate) throws -> ClientCredentials {
    let chain = try TrustBundle.certificates(pem: answer.chain, what: "the controller's answer")
    let credentials = try WorkloadCredentials(key: key, chain: chain)
    let pem = try credentials.pem()
    try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
    try CAStore.write(pem.key, to: URL(fileURLWithPath: self.keyPath), mode: 0o600)
    try CAStore.write(pem.chain, to: URL(fileURLWithPath: self.chainPath), mode: 0o644)
    try CAStore.write(answer.ca, to: URL(fileURLWithPath: self.caPath), mode: 0o644)
    return ClientCredentials(certificateChain: pem.chain, privateKey: pem.key, ca: answer.ca)
  }
}
