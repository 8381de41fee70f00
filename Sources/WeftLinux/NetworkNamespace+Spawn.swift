import Foundation

#if canImport(Glibc)
  import Glibc
#endif

extension NetworkNamespace {
  /// Starts `command` (looked up on PATH) in this network namespace and waits for it; returns its
  /// exit status, or 128 + signal when a signal ended it.
  public func spawnAndWait(_ command: [String]) throws -> Int32 {
    let pid: pid_t = try self.perform {
      var pid = pid_t()
      let argv = command.map { strdup($0) } + [nil]
      defer { argv.forEach { free($0) } }
      let rc = posix_spawnp(&pid, command[0], nil, nil, argv, environ)
      guard rc == 0 else { throw SystemError("start \(command[0])", errno: rc) }
      return pid
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
      guard errno == EINTR else { throw SystemError.current("wait for \(command[0])") }
    }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
  }
}
