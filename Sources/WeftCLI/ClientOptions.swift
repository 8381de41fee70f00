import ArgumentParser
import Foundation
import WeftClient

/// `--controller` and `--token`, shared by every client command.
struct ClientOptions: ParsableArguments {
  @Option(help: "The controller's URL (default: $WEFT_CONTROLLER, else http://127.0.0.1:7443).")
  var controller: String?

  @Option(help: "The API token (default: $WEFT_TOKEN).")
  var token: String?

  /// A client for the chosen controller.
  func client() throws -> ControlClient {
    let env = ProcessInfo.processInfo.environment
    let url = self.controller ?? env["WEFT_CONTROLLER"] ?? "http://127.0.0.1:7443"
    guard let token = self.token ?? env["WEFT_TOKEN"], !token.isEmpty else {
      throw ValidationError(
        "no token: pass --token or set WEFT_TOKEN (the controller keeps it in DATA/token)")
    }
    return ControlClient(baseURL: url, token: token)
  }
}

/// Prints an error as one `weft: ...` line on stderr and exits 1.
func fail(_ message: String) -> ExitCode {
  FileHandle.standardError.write(Data("weft: \(message)\n".utf8))
  return ExitCode(1)
}
