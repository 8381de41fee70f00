import Foundation
import NIOCore
import Testing
import WeftWire

/// Runs the external tools the cross-checks compare against. A missing tool is a test failure,
/// not a skip: CI installs them (`apt-get install tshark python3-scapy`).
enum ExternalTool {
  /// The repository root, found from this file's path.
  static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  /// Runs `executable` with `arguments`; returns stdout, throws on launch failure or a non-zero
  /// exit (with stderr in the message).
  static func run(_ executable: String, _ arguments: [String]) throws -> Data {
    guard FileManager.default.isExecutableFile(atPath: executable) else {
      throw Failure(description: "\(executable) not found: install it (apt-get install tshark python3-scapy)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes to the end before waiting so a chatty tool cannot block on a full pipe.
    let errReader = Thread.detachNewThreadReading(err)
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let errText = String(decoding: errReader.wait(), as: UTF8.self)
    guard process.terminationStatus == 0 else {
      throw Failure(
        description:
          "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(errText)")
    }
    return data
  }

  /// The path of tshark, from the usual places.
  static var tshark: String {
    ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }
      ?? "/usr/bin/tshark"
  }

  /// A fresh temporary directory; the caller removes it.
  static func makeTemporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weftwire-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
  }

  /// Writes `frames` to a pcap in a fresh temporary directory and returns its path.
  static func writePcap(_ frames: [ByteBuffer]) throws -> URL {
    var w = PcapWriter()
    for (i, f) in frames.enumerated() { w.append(f, seconds: 1_700_000_000, microseconds: UInt32(i)) }
    let url = try self.makeTemporaryDirectory().appendingPathComponent("frames.pcap")
    try Data(w.bytes).write(to: url)
    return url
  }
}

extension Thread {
  /// Reads `pipe` to the end on a new thread; `wait()` returns the bytes.
  fileprivate static func detachNewThreadReading(_ pipe: Pipe) -> PipeDrain {
    let drain = PipeDrain()
    let handle = pipe.fileHandleForReading
    Thread.detachNewThread {
      drain.finish(handle.readDataToEndOfFile())
    }
    return drain
  }
}

/// The result of a background pipe read.
private final class PipeDrain: @unchecked Sendable {
  private let done = DispatchSemaphore(value: 0)
  private var data = Data()

  func finish(_ d: Data) {
    self.data = d
    self.done.signal()
  }

  func wait() -> Data {
    self.done.wait()
    return self.data
  }
}
