import ArgumentParser
import Foundation
import WeftControl
import WeftLab
import WeftManifest
import WeftModel
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// `weft lab`: a multi-host lab on this machine in network namespaces.
struct LabCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "lab",
    abstract: "Run a multi-host lab on this machine in network namespaces.",
    subcommands: [Up.self, Down.self, List.self, Exec.self, Env.self, Apply.self, WorkloadCommand.self]
  )

  struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Create a lab: an underlay switch, N hosts (host K at 198.18.0.K), a controller and an agent per host."
    )

    @Argument(help: "The lab's name (lower-case letters, digits, dashes).")
    var name: String

    @Option(help: "How many hosts.")
    var hosts: Int = 2

    @Option(help: "The underlay network (IPv4, /24 or wider).")
    var underlay: String = Lab.defaultUnderlay.description

    @Option(
      help: """
        The agents' datapath: kernel, userspace, or one per host in order, comma-separated \
        (userspace,kernel: host1 userspace, the others kernel).
        """)
    var datapath: String = "kernel"

    @Flag(help: "Only the namespaces and the underlay: no controller, no agents.")
    var noControlPlane = false

    @Option(help: "Hours a workload certificate lasts (the controller's --certificate-hours).")
    var certificateHours: Double?

    @Option(help: "Seconds a rotated-out mesh CA still signs (the controller's --ca-propagation).")
    var caPropagation: Double?

    func run() async throws {
      guard let prefix = IPPrefix(underlay) else {
        throw ValidationError("--underlay '\(underlay)' is not an IPv4 prefix such as 198.18.0.0/24")
      }
      try await reportingLabErrorsAsync {
        try Lab.validateDatapath(datapath)
        let clock = ContinuousClock()
        let t0 = clock.now
        try Lab.up(name: name, hosts: hosts, underlay: prefix) { print($0) }
        if !noControlPlane {
          let arguments =
            (certificateHours.map { ["--certificate-hours", String($0)] } ?? [])
            + (caPropagation.map { ["--ca-propagation", String($0)] } ?? [])
          try await Lab.startControlPlane(name: name, datapath: datapath, controllerArguments: arguments) {
            print($0)
          }
          print("control plane up in \(clock.now - t0); client commands: eval $(weft lab env \(name))")
        }
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

  struct Env: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print the environment that points client commands at the lab's controller.",
      discussion: "Use: eval $(weft lab env NAME); weft get hosts")

    @Argument(help: "The lab's name.")
    var name: String

    func run() throws {
      try reportingLabErrors {
        let client = try Lab.client(name)
        print(
          "export WEFT_CONTROLLER=\(client.baseURL) WEFT_TOKEN=\(client.token) WEFT_CA=\(Lab.caFile(name))")
      }
    }
  }

  struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply a YAML file to the lab's controller.")

    @Argument(help: "The lab's name.")
    var name: String

    @Option(name: .shortAndLong, help: "The file to apply.")
    var file: String

    func run() async throws {
      try await reportingLabErrorsAsync {
        let client = try Lab.client(name)
        guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
        do {
          let applied = try await client.apply(try Manifest.parse(String(decoding: data, as: UTF8.self)))
          for r in applied.items { print("\(r.kind.rawValue.lowercased())/\(r.metadata.name) applied") }
        } catch let e as Manifest.Error {
          throw fail("\(file): \(e)")
        } catch let e as ControlError {
          throw fail(e.message)
        }
      }
    }
  }

  struct WorkloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "workload", abstract: "Add or remove lab workloads (network namespaces on a host).",
      subcommands: [Add.self, Remove.self])

    struct Add: AsyncParsableCommand {
      static let configuration = CommandConfiguration(commandName: "add", abstract: "Attach a new workload.")

      @Argument(help: "The lab's name.")
      var name: String

      @Argument(help: "The workload's name.")
      var workload: String

      @Option(help: "The host (host1, host2, ...).")
      var host: String

      @Option(help: "The network.")
      var network: String

      @Option(help: "A label, key=value; repeat for more.")
      var label: [String] = []

      @Flag(help: "Start a sidecar (weft proxy) in the workload, fed by its host's agent.")
      var mesh = false

      func run() async throws {
        var labels: [String: String] = [:]
        for l in label {
          let parts = l.split(separator: "=", maxSplits: 1).map(String.init)
          guard parts.count == 2, !parts[0].isEmpty else {
            throw ValidationError("--label '\(l)' must be key=value")
          }
          labels[parts[0]] = parts[1]
        }
        try await reportingLabErrorsAsync {
          do {
            let w = try await Lab.addWorkload(
              lab: name, workload: workload, host: host, network: network, labels: labels, mesh: mesh)
            print(
              "workload \(w.name) on \(w.host), network \(w.network), address \(w.address), namespace \(w.namespace)"
            )
          } catch let e as ControlError {
            throw fail(e.message)
          }
        }
      }
    }

    struct Remove: AsyncParsableCommand {
      static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Detach and remove a workload.")

      @Argument(help: "The lab's name.")
      var name: String

      @Argument(help: "The workload's name.")
      var workload: String

      func run() async throws {
        try await reportingLabErrorsAsync {
          try await Lab.removeWorkload(lab: name, workload: workload)
          print("workload \(workload) removed")
        }
      }
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

/// The asynchronous form of ``reportingLabErrors(_:)``.
@discardableResult
func reportingLabErrorsAsync<T>(_ body: () async throws -> T) async throws -> T {
  do {
    return try await body()
  } catch let error as LabError {
    FileHandle.standardError.write(Data("weft: \(error.message)\n".utf8))
    throw ExitCode(error.code == .notPrivileged ? 77 : 1)
  }
}

/// Left-aligns `s` in a column of `width`.
func pad(_ s: String, _ width: Int) -> String {
  s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
