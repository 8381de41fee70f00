import ArgumentParser
import WeftLinux
import WeftSidecar

/// The `weft` command: the root of every subcommand.
@available(macOS 10.15, macCatalyst 13, iOS 13, tvOS 13, watchOS 6, *)
public struct WeftCommand: AsyncParsableCommand {
  /// Creates the command (ArgumentParser fills it).
  public init() {}

  /// The command's name, abstract and subcommands.
  public static let configuration = CommandConfiguration(
    commandName: "weft",
    abstract: "Weft: a container overlay network (VXLAN) with a service mesh on top.",
    subcommands: [
      ControllerCommand.self, AgentCommand.self, ApplyCommand.self, GetCommand.self, DeleteCommand.self,
      LabCommand.self, EchoCommand.self, ProxyCommand.self, PolicyCommand.self, TokenCommand.self,
      CertificateCommand.self, CACommand.self,
    ]
  )
}

@available(macOS 10.15, macCatalyst 13, iOS 13, tvOS 13, watchOS 6, *)
extension WeftCommand {
  /// Parses the process arguments, runs the chosen subcommand (awaiting asynchronous ones) and
  /// exits with its status.
  public static func runFromCommandLine() async {
    // Long-running commands log line by line, even to a file.
    Spawn.lineBufferStandardOutput()
    do {
      var command = try Self.parseAsRoot()
      if var asyncCommand = command as? any AsyncParsableCommand {
        try await Self.runAsync(&asyncCommand)
      } else {
        try command.run()
      }
    } catch {
      Self.exit(withError: error)
    }
  }

  private static func runAsync<C: AsyncParsableCommand>(_ command: inout C) async throws {
    try await command.run()
  }
}
