import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import NIOCore
import NIOSSL
import ServiceLifecycle
import WeftControl
import WeftIdentity
import WeftStore

/// Collects the listeners' URLs and writes them to the ready file once all are up.
actor ReadyURLs {
  let expected: Int
  let file: String?
  var urls: [String] = []

  init(expected: Int, file: String?) {
    self.expected = expected
    self.file = file
  }

  func add(_ address: SocketAddress?) {
    switch address {
    case .v4(let a)?: urls.append("https://\(a.host):\(address?.port ?? 0)")
    case .v6(let a)?: urls.append("https://[\(a.host)]:\(address?.port ?? 0)")
    case .unixDomainSocket?:
      let path = address?.pathname ?? ""
      urls.append(
        "https+unix://" + (path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? path))
    case nil: urls.append("unknown")
    }
    print("weft controller listening on \(urls.last!)")
    if urls.count == expected, let file {
      try? (urls.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
    }
  }
}

/// `weft controller`: the control plane's API server.
struct ControllerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "controller", abstract: "Run the controller: the API, the store and the allocators.")

  @Option(help: "Where to listen: ADDRESS:PORT (port 0 picks one) or unix:PATH; repeat for more.")
  var listen: [String] = ["127.0.0.1:7443"]

  @Option(
    help:
      "Directory for the store (weft.db), the CAs (ca/, control-ca/), the credentials (auth.json) and the first admin token (admin-token)."
  )
  var data: String = "/var/lib/weft"

  @Option(help: "An operator token accepted for this run, never written (default: $WEFT_TOKEN).")
  var token: String?

  @Option(help: "Seconds without a heartbeat before a host is removed and its leases released.")
  var leaseTTL: Int = 3600

  @Option(help: "A file to write the listening URLs to, one per line, once every listener is up.")
  var readyFile: String?

  @Option(help: "The mesh's trust domain (workload identities are spiffe://DOMAIN/ns/NS/sa/ACCOUNT).")
  var trustDomain = "weft.local"

  @Option(help: "Hours a workload certificate lasts.")
  var certificateHours = 24.0

  @Option(
    help: """
      Seconds a rotated-out mesh CA still signs while the new root reaches every agent and \
      sidecar (at least 50: agents re-read trust every 20 s, sidecars every 30 s).
      """)
  var caPropagation = 90.0

  @Option(help: "Hours a host's or user's client certificate lasts (renewed half-way by agents).")
  var clientCertificateHours = 168.0

  @Option(help: "An extra DNS name or IP address for the API's server certificate; repeat for more.")
  var tlsSAN: [String] = []

  func validate() throws {
    guard self.certificateHours > 0, self.certificateHours.isFinite else {
      throw ValidationError(
        "--certificate-hours must be a positive number of hours, not \(self.certificateHours)")
    }
    guard self.caPropagation > 0, self.caPropagation.isFinite else {
      throw ValidationError(
        "--ca-propagation must be a positive number of seconds, not \(self.caPropagation)")
    }
  }

  func run() async throws {
    let addresses = try listen.map(Self.bindAddress)
    try FileManager.default.createDirectory(
      atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let store = try SQLiteStore(path: "\(data)/weft.db")
    chmod("\(data)/weft.db", 0o600)
    // The mesh's CA: DATA/ca holds an operator's root or intermediate, or the root made at first start.
    let caStore = CAStore(directory: URL(fileURLWithPath: "\(data)/ca"))
    let (authority, bundle) = try caStore.loadOrCreate(trustDomain: self.trustDomain)
    let controller = Controller(
      store: store, leaseTTL: .seconds(leaseTTL),
      issuer: IdentityIssuer(
        authority: authority, bundle: bundle, lifetime: self.certificateHours * 3600, store: caStore,
        propagation: self.caPropagation))
    let auth = try await self.makeAuth()
    let tls = try self.serverTLS(pki: auth.pki!)
    let router = ControlServer.router(controller: controller, auth: auth)
    let ready = ReadyURLs(expected: addresses.count, file: readyFile)
    var apps = try addresses.map { address in
      Application(
        router: router, server: try .tls(.http1(), tlsConfiguration: tls),
        configuration: .init(address: address, serverName: "weft"),
        onServerRunning: { channel in await ready.add(channel.localAddress) })
    }
    var main = apps.removeFirst()
    main.addServices(apps.map { $0 as any Service })
    print("weft controller: store \(data)/weft.db at revision \(try await store.currentRevision())")
    print("weft controller: TLS 1.3; clients trust \(data)/control-ca/ca.pem (--ca, WEFT_CA)")
    let expiry = Task {
      while !Task.isCancelled {
        try? await Task.sleep(for: .seconds(5))
        for name in (try? await controller.expireHosts()) ?? [] {
          print("host \(name) expired: no heartbeat for \(leaseTTL)s; leases released")
        }
      }
    }
    defer { expiry.cancel() }
    try await main.runService()
  }

  /// The credentials registry (DATA/auth.json, 0600) and the control plane's CA (DATA/control-ca).
  /// With no operator token and no stored admin token, makes one and writes it, once, to
  /// DATA/admin-token (0600) for the operator to take; the controller keeps only its hash.
  func makeAuth() async throws -> ControlAuth {
    let operatorToken = (self.token ?? ProcessInfo.processInfo.environment["WEFT_TOKEN"]).flatMap {
      $0.isEmpty ? nil : $0
    }
    let registry = try AuthRegistry(
      path: "\(data)/auth.json", operatorTokens: operatorToken.map { [$0] } ?? [])
    let (controlCA, _) = try CAStore(
      directory: URL(fileURLWithPath: "\(data)/control-ca"), name: "Weft control plane CA"
    )
    .loadOrCreate(trustDomain: self.trustDomain)
    let auth = ControlAuth(
      registry: registry, pki: ControlPlanePKI(authority: controlCA),
      clientCertificateLifetime: self.clientCertificateHours * 3600)
    if await !registry.hasAdminToken {
      let made = try await registry.createToken(role: .admin, description: "first admin token")
      try CAStore.write(made.token + "\n", to: URL(fileURLWithPath: "\(data)/admin-token"), mode: 0o600)
      print(
        "weft controller: made the first admin token; it is in \(data)/admin-token (mode 0600), nowhere else")
    }
    return auth
  }

  /// The API's TLS (``ControlPlanePKI/serverTLSConfiguration(names:)``), the certificate naming
  /// localhost, this host's name, every listen address and `--tls-san`.
  func serverTLS(pki: ControlPlanePKI) throws -> TLSConfiguration {
    var names = ["localhost", "weft-controller", ProcessInfo.processInfo.hostName] + self.tlsSAN
    for text in listen where !text.hasPrefix("unix:") {
      if let colon = text.lastIndex(of: ":") {
        names.append(String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")))
      }
    }
    return try pki.serverTLSConfiguration(
      names: names.filter { !$0.isEmpty && $0 != "0.0.0.0" && $0 != "::" })
  }

  /// Parses `ADDRESS:PORT` or `unix:PATH`.
  static func bindAddress(_ text: String) throws -> BindAddress {
    if text.hasPrefix("unix:") {
      let path = String(text.dropFirst(5))
      try? FileManager.default.removeItem(atPath: path)  // a stale socket from an earlier run
      return .unixDomainSocket(path: path)
    }
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
      throw ValidationError("--listen '\(text)' must be ADDRESS:PORT (e.g. 127.0.0.1:7443) or unix:PATH")
    }
    let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    return .hostname(host, port: port)
  }
}
