import Foundation
import Testing

/// `weft proxy` becomes the `weft-proxy` executable beside it (a process that maps only the
/// sidecar), unless WEFT_PROXY_INPROCESS=1; either way it is the same command to its user.
@Suite struct SlimSidecarTests {
  /// Starts `weft proxy` on loopback ports with an empty snapshot and no interception, waits for
  /// it to say it is ready, and returns the executable its process runs.
  func runningExecutable(inProcess: Bool) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-slim-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let config = dir.appendingPathComponent("empty.json")
    try Data(#"{"version": 1, "services": []}"#.utf8).write(to: config)
    let base = Int.random(in: 20_000...60_000)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: weftBinary)
    p.arguments = [
      "proxy", "--config", config.path, "--no-intercept", "--outbound-port", "\(base)", "--inbound-port",
      "\(base + 1)", "--admin-port", "\(base + 2)",
    ]
    var environment = ProcessInfo.processInfo.environment
    environment["WEFT_PROXY_INPROCESS"] = inProcess ? "1" : nil
    p.environment = environment
    let log = dir.appendingPathComponent("proxy.log")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    p.standardOutput = handle
    p.standardError = handle
    try p.run()
    defer {
      p.terminate()
      p.waitUntilExit()
    }
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
      if (try? String(contentsOf: log, encoding: .utf8))?.contains("weft proxy: ready") == true { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    #expect((try? String(contentsOf: log, encoding: .utf8))?.contains("weft proxy: ready") == true)
    return try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p.processIdentifier)/exe")
  }

  @Test func weftProxyRunsTheSlimExecutableUnlessToldNotTo() throws {
    #expect(try self.runningExecutable(inProcess: false).hasSuffix("/weft-proxy"))
    #expect(try self.runningExecutable(inProcess: true).hasSuffix("/weft"))
  }

  @Test func itsUsageAndErrorsNameTheCommandTheUserTyped() throws {
    let (status, output) = try weft("proxy", "--bogus")
    #expect(status != 0)
    #expect(output.contains("Unknown option '--bogus'"))
    #expect(output.contains("See 'weft proxy --help'"))
    let help = try weft("proxy", "--help")
    #expect(help.output.contains("USAGE: weft proxy [--config <config>]"))
  }
}
