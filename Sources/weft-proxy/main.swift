import ArgumentParser
import CWeftLinux
import Glibc
import WeftSidecar

// The sidecar alone (`weft proxy` runs this when it sits beside the weft executable): a process
// that maps only what a sidecar uses, with the Swift runtime linked in, not the whole of weft.
weft_line_buffer_stdout()  // its log is a file, read line by line for "ready"
signal(SIGPIPE, SIG_IGN)

/// The root command, named `weft` with `proxy` its only (and default) subcommand: `weft proxy`
/// execs this executable as `weft-proxy proxy ARGS`, and its help and errors then read
/// `weft proxy ...` as the user typed it; `weft-proxy ARGS` works too.
struct SidecarRoot: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "weft", subcommands: [ProxyCommand.self], defaultSubcommand: ProxyCommand.self)
}

/// Runs `command` through AsyncParsableCommand's requirement (a direct call on the concrete type
/// would pick ParsableCommand's synchronous `run`, which only prints the help).
func runAsync<C: AsyncParsableCommand>(_ command: inout C) async throws { try await command.run() }

do {
  var command = try SidecarRoot.parseAsRoot()
  if var proxy = command as? ProxyCommand {
    try await runAsync(&proxy)
  } else {
    try command.run()
  }
} catch {
  SidecarRoot.exit(withError: error)
}
