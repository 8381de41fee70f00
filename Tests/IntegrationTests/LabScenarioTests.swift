import Foundation
import Testing
import WeftLab
import WeftLinux

/// The built `weft` executable (it sits beside the test bundle).
let weftBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  .appendingPathComponent("weft").path

/// Runs `weft ARGS` (as another user with `user`) and captures its status and output.
func weft(_ args: String..., user: String? = nil) throws -> (status: Int32, output: String) {
  try weftArgs(args, user: user)
}

/// Runs `weft` with an argument array (as another user with `user`).
func weftArgs(_ args: [String], user: String? = nil) throws -> (status: Int32, output: String) {
  let p = Process()
  if let user {
    p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
    p.arguments = ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", weftBinary] + args
  } else {
    p.executableURL = URL(fileURLWithPath: weftBinary)
    p.arguments = args
  }
  let pipe = Pipe()
  p.standardOutput = pipe
  p.standardError = pipe
  try p.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Names of the root namespace's links, read with `ip -j` (the lab must never add any).
func rootLinks() throws -> Set<String> {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
  p.arguments = ["-j", "link", "show"]
  let pipe = Pipe()
  p.standardOutput = pipe
  try p.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
  return Set(list.compactMap { $0["ifname"] as? String })
}

/// Lab names in these tests are `it-PID-...`, so parallel runs never meet; leftovers of this
/// prefix from a dead run are removed first.
@Suite("weft lab: hosts in namespaces reach each other; nothing left behind", .serialized)
struct LabScenarioTests {
  let name = "it\(getpid() % 100_000)"

  init() {
    for lab in Lab.list() where lab.name.hasPrefix("it") && lab.name != self.name {
      _ = try? Lab.down(name: lab.name)
    }
    _ = try? Lab.down(name: self.name)
  }

  @Test func upExecPingAndDown() throws {
    let before = try rootLinks()
    let up = try weft("lab", "up", name, "--hosts", "3")
    #expect(up.status == 0, "\(up.output)")
    #expect(up.output.contains("create host3: namespace weft-\(name)-host3, eth0 198.18.0.3/24"))
    #expect(up.output.contains("lab '\(name)' is up in"))
    defer { _ = try? Lab.down(name: name) }

    let list = try weft("lab", "list")
    #expect(list.output.contains("weft-\(name)-host2"))

    let ping = try weft("lab", "exec", name, "host1", "--", "ping", "-c1", "-W2", "198.18.0.3")
    #expect(ping.status == 0, "\(ping.output)")
    #expect(ping.output.contains("1 received"))
    let back = try weft("lab", "exec", name, "host3", "--", "ping", "-c1", "-W2", "198.18.0.2")
    #expect(back.status == 0, "\(back.output)")

    // Exit status passes through; an unknown target is a clear error.
    #expect(try weft("lab", "exec", name, "host2", "--", "sh", "-c", "exit 7").status == 7)
    let unknown = try weft("lab", "exec", name, "host9", "--", "true")
    #expect(unknown.status == 1)
    #expect(unknown.output.contains("has no target 'host9'"))

    // Only the network namespace is entered: the mount namespace (and /sys) stay the host's.
    let mounts = try weft("lab", "exec", name, "host1", "--", "readlink", "/proc/self/ns/mnt")
    #expect(
      mounts.output.trimmingCharacters(in: .whitespacesAndNewlines)
        == (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt")))

    // A second up with the same name changes nothing.
    let again = try weft("lab", "up", name, "--hosts", "2")
    #expect(again.status == 1)
    #expect(again.output.contains("exists already"))
    #expect(Lab.namespaces(of: name).count == 4)

    let down = try weft("lab", "down", name)
    #expect(down.status == 0)
    #expect(Lab.namespaces(of: name).isEmpty)
    #expect(!FileManager.default.fileExists(atPath: "/run/weft/labs/\(name)"))
    #expect(try rootLinks() == before)
  }

  @Test func failedUpRemovesWhatItMade() throws {
    // A file where the state directory would go makes the last step fail.
    try FileManager.default.createDirectory(atPath: Lab.stateDirectory, withIntermediateDirectories: true)
    let blocker = "\(Lab.stateDirectory)/\(name)"
    #expect(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
    defer { try? FileManager.default.removeItem(atPath: blocker) }
    let up = try weft("lab", "up", name, "--hosts", "2")
    #expect(up.status == 1)
    #expect(up.output.contains("failed"))
    #expect(up.output.contains("removed what was made"))
    #expect(Lab.namespaces(of: name).isEmpty)
  }

  @Test func badInputAndMissingPrivileges() throws {
    let bad = try weft("lab", "up", "Bad_Name")
    #expect(bad.status == 1)
    #expect(bad.output.contains("lab name 'Bad_Name' is not valid"))
    let many = try weft("lab", "up", name, "--hosts", "0")
    #expect(many.output.contains("--hosts must be between 1 and"))
    #expect(Lab.namespaces(of: name).isEmpty)
    let unprivileged = try weft("lab", "up", name, user: "65534")
    #expect(unprivileged.status == 77)
    #expect(unprivileged.output.contains("needs root"))
  }
}
