import ArgumentParser
import Foundation
import WeftLab
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// `weft lab`: a multi-host lab on this machine in network namespaces.
struct LabCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "lab",
    abstract: "Run a multi-host lab on this machine in network namespaces.",
    subcommands: [Up.self, Down.self, List.self, Exec.self]
  )

  struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create a lab: an underlay switch and N hosts, host K at 198.18.0.K.")

    @Argument(help: "The lab's name (lower-case letters, digits, dashes).")
    var name: String

    @Option(help: "How many hosts.")
    var hosts: Int = 2

    @Option(help: "The underlay network (IPv4, /24 or wider).")
    var underlay: String = Lab.defaultUnderlay.description

    func run() throws {
      guard let prefix = IPPrefix(underlay) else {
        throw ValidationError("--underlay '\(underlay)' is not an IPv4 prefix such as 198.18.0.0/24")
      }
      try reportingLabErrors {
        try Lab.up(name: name, hosts: hosts, underlay: prefix) { print($0) }
      }
    }
  }

  struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove a lab and everything it made.")

    @Argument(help: "The lab's name.")
    var name: String

    func run() throws {
      try reportingLabErrors {
        let removed = try Lab.down(name: name)
        if removed.isEmpty {
          print("lab '\(name)': nothing to remove")
        } else {
          print("lab '\(name)' removed: \(removed.joined(separator: " "))")
        }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show labs and their hosts.")

    func run() throws {
      let labs = Lab.list()
      if labs.isEmpty {
        print("no labs")
        return
      }
      print(pad("LAB", 22) + pad("HOST", 10) + pad("NAMESPACE", 30) + "UNDERLAY")
      for lab in labs {
        print(pad(lab.name, 22) + pad("switch", 10) + pad(lab.switchNamespace, 30) + lab.underlay)
        for h in lab.hosts {
          print(pad("", 22) + pad(h.name, 10) + pad(h.namespace, 30) + h.underlay)
        }
      }
    }
  }

  struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Run a command in a lab host's network namespace and exit with its status.",
      discussion: "Example: weft lab exec demo host1 -- ping -c1 198.18.0.2")

    @Argument(help: "The lab's name.")
    var name: String

    @Argument(help: "A host (host1, host2, ...) or 'switch'.")
    var target: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after --.")
    var command: [String] = []

    func run() throws {
      let argv = command.first == "--" ? Array(command.dropFirst()) : command
      let status = try reportingLabErrors { try Lab.exec(lab: name, target: target, command: argv) }
      throw ExitCode(status)
    }
  }
}

/// Prints a lab error to stderr as `weft: message` and exits 1, instead of ArgumentParser's
/// generic rendering.
@discardableResult
func reportingLabErrors<T>(_ body: () throws -> T) throws -> T {
  do {
    return try body()
  } catch let error as LabError {
    FileHandle.standardError.write(Data("weft: \(error.message)\n".utf8))
    throw ExitCode(error.code == .notPrivileged ? 77 : 1)
  }
}

/// Left-aligns `s` in a column of `width`.
func pad(_ s: String, _ width: Int) -> String {
  s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
