import ArgumentParser
import Foundation
import Hummingbird
import NIOCore
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
    case .v4(let a)?: urls.append("http://\(a.host):\(address?.port ?? 0)")
    case .v6(let a)?: urls.append("http://[\(a.host)]:\(address?.port ?? 0)")
    case .unixDomainSocket?:
      let path = address?.pathname ?? ""
      urls.append(
        "http+unix://" + (path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? path))
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

  @Option(help: "Directory for the store (weft.db) and the token file.")
  var data: String = "/var/lib/weft"

  @Option(help: "The API token (default: $WEFT_TOKEN, else DATA/token, made on first start).")
  var token: String?

  @Option(help: "Seconds without a heartbeat before a host is removed and its leases released.")
  var leaseTTL: Int = 3600

  @Option(help: "A file to write the listening URLs to, one per line, once every listener is up.")
  var readyFile: String?

  @Option(help: "The mesh's trust domain (workload identities are spiffe://DOMAIN/ns/NS/sa/ACCOUNT).")
  var trustDomain = "weft.local"

  @Option(help: "Hours a workload certificate lasts.")
  var certificateHours = 24.0

  func run() async throws {
    let addresses = try listen.map(Self.bindAddress)
    try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    let token =
      try self.token ?? ProcessInfo.processInfo.environment["WEFT_TOKEN"] ?? Self.tokenFile(in: data)
    let store = try SQLiteStore(path: "\(data)/weft.db")
    // The CA: DATA/ca holds an operator's root or intermediate, or the root made at first start.
    let (authority, bundle) = try CAStore(directory: URL(fileURLWithPath: "\(data)/ca"))
      .loadOrCreate(trustDomain: self.trustDomain)
    let controller = Controller(
      store: store, leaseTTL: .seconds(leaseTTL),
      issuer: IdentityIssuer(authority: authority, bundle: bundle, lifetime: self.certificateHours * 3600))
    let router = ControlServer.router(controller: controller, token: token)
    let ready = ReadyURLs(expected: addresses.count, file: readyFile)
    var apps = addresses.map { address in
      Application(
        router: router, configuration: .init(address: address, serverName: "weft"),
        onServerRunning: { channel in await ready.add(channel.localAddress) })
    }
    var main = apps.removeFirst()
    main.addServices(apps.map { $0 as any Service })
    print("weft controller: store \(data)/weft.db at revision \(try await store.currentRevision())")
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

  /// Reads DATA/token, or writes a new random one there (mode 0600).
  static func tokenFile(in dir: String) throws -> String {
    let path = "\(dir)/token"
    if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
      return existing.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    var rng = SystemRandomNumberGenerator()
    let token = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    guard
      FileManager.default.createFile(
        atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600])
    else { throw ValidationError("cannot write the token file \(path)") }
    return token
  }
}
