import ArgumentParser
import Foundation
import Hummingbird
import WeftControl
import WeftStore

/// `weft controller`: the control plane's API server.
struct ControllerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "controller", abstract: "Run the controller: the API, the store and the allocators.")

  @Option(help: "Address and port to listen on.")
  var listen: String = "127.0.0.1:7443"

  @Option(help: "Directory for the store (weft.db) and the token file.")
  var data: String = "/var/lib/weft"

  @Option(help: "The API token (default: $WEFT_TOKEN, else DATA/token, made on first start).")
  var token: String?

  @Option(help: "Seconds without a heartbeat before a host is removed and its leases released.")
  var leaseTTL: Int = 3600

  func run() async throws {
    guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
      throw ValidationError("--listen '\(listen)' must be ADDRESS:PORT, e.g. 127.0.0.1:7443")
    }
    let host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    let token =
      try self.token ?? ProcessInfo.processInfo.environment["WEFT_TOKEN"] ?? Self.tokenFile(in: data)
    let store = try SQLiteStore(path: "\(data)/weft.db")
    let controller = Controller(store: store, leaseTTL: .seconds(leaseTTL))
    let app = Application(
      router: ControlServer.router(controller: controller, token: token),
      configuration: .init(address: .hostname(host, port: port), serverName: "weft"))
    print(
      "weft controller listening on \(listen), store \(data)/weft.db at revision \(try await store.currentRevision())"
    )
    let expiry = Task {
      while !Task.isCancelled {
        try? await Task.sleep(for: .seconds(5))
        for name in (try? await controller.expireHosts()) ?? [] {
          print("host \(name) expired: no heartbeat for \(leaseTTL)s; leases released")
        }
      }
    }
    defer { expiry.cancel() }
    try await app.runService()
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
