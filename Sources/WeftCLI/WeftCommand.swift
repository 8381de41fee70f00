import ArgumentParser

/// The `weft` command: the root of every subcommand.
public struct WeftCommand: ParsableCommand {
  /// Creates the command (ArgumentParser fills it).
  public init() {}

  /// The command's name, abstract and subcommands.
  public static let configuration = CommandConfiguration(
    commandName: "weft",
    abstract: "Weft: a container overlay network (VXLAN) with a service mesh on top.",
    subcommands: [LabCommand.self]
  )
}
