import WeftCLI

#if canImport(Glibc)
  import Glibc
#endif

// A server must not die because a peer closed its end while we wrote. The runtime's libraries
// ignore SIGPIPE already; saying so here keeps that true whatever they do.
signal(SIGPIPE, SIG_IGN)

// `weft proxy` becomes the `weft-proxy` executable installed beside this one, when there is one:
// the same command, in a process that maps a sidecar's code only (about 19 MB resident instead
// of 32). WEFT_PROXY_INPROCESS=1 keeps it in this process.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "proxy", getenv("WEFT_PROXY_INPROCESS") == nil
{
  execSlimProxy(Array(CommandLine.arguments.dropFirst(1)))
}
await WeftCommand.runFromCommandLine()

/// Replaces this process with `weft-proxy` from this executable's directory, passing `arguments`
/// (`proxy` and the options after it); returns only when there is no such executable or it
/// cannot be run.
func execSlimProxy(_ arguments: [String]) {
  var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
  let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
  guard length > 0 else { return }
  let exe = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  guard let slash = exe.lastIndex(of: "/") else { return }
  let path = String(exe[..<slash]) + "/weft-proxy"
  guard access(path, X_OK) == 0 else { return }
  let argv = ([path] + arguments).map { strdup($0) } + [nil]
  execv(path, argv)
  for pointer in argv { free(pointer) }  // still here: execv failed, run in this process
}
