import ArgumentParser
import Foundation
import WeftClient

/// `--controller`, `--token`, `--ca`, `--cert` and `--key`, shared by every client command.
struct ClientOptions: ParsableArguments {
  @Option(help: "The controller's URL (default: $WEFT_CONTROLLER, else https://127.0.0.1:7443).")
  var controller: String?

  @Option(help: "The API token (default: $WEFT_TOKEN).")
  var token: String?

  @Option(
    help:
      "The control plane's CA certificate to trust the controller by (default: $WEFT_CA, else /var/lib/weft/control-ca/ca.pem)."
  )
  var ca: String?

  @Option(help: "A client certificate (PEM) to authenticate with instead of a token (default: $WEFT_CERT).")
  var cert: String?

  @Option(help: "The client certificate's private key (PEM) (default: $WEFT_KEY).")
  var key: String?

  /// The controller's URL.
  var url: String {
    self.controller ?? ProcessInfo.processInfo.environment["WEFT_CONTROLLER"] ?? "https://127.0.0.1:7443"
  }

  /// The CA (PEM) from `--ca`, `$WEFT_CA` or the controller's default data directory; nil when
  /// none is given and the default is not there.
  func caPEM() throws -> String? {
    let env = ProcessInfo.processInfo.environment
    guard let path = self.ca ?? env["WEFT_CA"] else {
      return try? String(contentsOfFile: "/var/lib/weft/control-ca/ca.pem", encoding: .utf8)
    }
    do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
      throw ValidationError(
        "cannot read the CA file '\(path)' (--ca, WEFT_CA): \(error.localizedDescription)")
    }
  }

  /// A client for the chosen controller.
  func client() throws -> ControlClient {
    let env = ProcessInfo.processInfo.environment
    let url = self.url
    let token = (self.token ?? env["WEFT_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }
    let certPath = self.cert ?? env["WEFT_CERT"]
    let keyPath = self.key ?? env["WEFT_KEY"]
    if url.hasPrefix("http:") || url.hasPrefix("http+unix:") {
      guard let token else { throw ValidationError("no token: pass --token or set WEFT_TOKEN") }
      return ControlClient(baseURL: url, token: token)
    }
    guard let ca = try self.caPEM() else {
      throw ValidationError(
        "no CA to trust the controller at \(url) by: pass --ca or set WEFT_CA (the controller's DATA/control-ca/ca.pem)"
      )
    }
    var credentials = ClientCredentials(token: token, ca: ca)
    if certPath != nil || keyPath != nil {
      guard let certPath, let keyPath else {
        throw ValidationError("a client certificate needs both --cert and --key (WEFT_CERT, WEFT_KEY)")
      }
      do {
        credentials.certificateChain = try String(contentsOfFile: certPath, encoding: .utf8)
        credentials.privateKey = try String(contentsOfFile: keyPath, encoding: .utf8)
      } catch {
        throw ValidationError("cannot read the client certificate or key: \(error.localizedDescription)")
      }
    }
    guard token != nil || credentials.certificateChain != nil else {
      throw ValidationError(
        "no credentials: pass --token (or set WEFT_TOKEN), or --cert and --key (WEFT_CERT, WEFT_KEY)")
    }
    do { return try ControlClient(baseURL: url, credentials: credentials) } catch {
      throw ValidationError("\(error)")
    }
  }
}

/// Prints an error as one `weft: ...` line on stderr and exits 1.
func fail(_ message: String) -> ExitCode {
  FileHandle.standardError.write(Data("weft: \(message)\n".utf8))
  return ExitCode(1)
}
