import WeftCLI

#if canImport(Glibc)
  import Glibc
#endif

// A server must not die because a peer closed its end while we wrote. The runtime's libraries
// ignore SIGPIPE already; saying so here keeps that true whatever they do.
signal(SIGPIPE, SIG_IGN)
await WeftCommand.runFromCommandLine()
