import Glibc

/// Runs `nft -f -` in the calling thread's network namespace with a ruleset on its standard
/// input (posix_spawn, no shell), and reports nft's own complaint when it refuses the rules.
/// The agents' isolation tables and the sidecars' interception rules both go in this way.
public enum NFTables {
  /// A ruleset nft refused, or an nft that could not be run.
  public struct Failure: Error, CustomStringConvertible {
    /// What went wrong, with nft's own message when it gave one.
    public var description: String
    /// nft's complaint as it printed it (empty when nft did not run).
    public var complaint: String
  }

  /// Where nft is looked for, in order.
  public static let candidates = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]

  /// Applies `script` atomically (nft loads a file as one transaction).
  public static func apply(_ script: String) throws(Failure) {
    guard let path = Self.candidates.first(where: { access($0, X_OK) == 0 }) else {
      throw Failure(
        description: "nft is not installed (looked in \(Self.candidates.joined(separator: ", ")))",
        complaint: "")
    }
    var input: [Int32] = [0, 0]
    var errors: [Int32] = [0, 0]
    guard Self.pipe(&input) else { throw Failure(description: "pipe: errno \(errno)", complaint: "") }
    guard Self.pipe(&errors) else {
      close(input[0])
      close(input[1])
      throw Failure(description: "pipe: errno \(errno)", complaint: "")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input[0], 0)
    posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
    let arguments = [path, "-f", "-"]
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, path, &actions, nil, &argv, environ)
    close(input[0])
    close(errors[1])
    guard spawned == 0 else {
      close(input[1])
      close(errors[0])
      throw Failure(description: "cannot run \(path): errno \(spawned)", complaint: "")
    }
    // Rulesets are a few KiB, well under a pipe's buffer: writing all before reading nft's
    // complaints cannot deadlock.
    let bytes = Array(script.utf8)
    var written = 0
    while written < bytes.count {
      let n = bytes.withUnsafeBytes { write(input[1], $0.baseAddress! + written, $0.count - written) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { break }
      written += n
    }
    close(input[1])
    var complaint: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(errors[0], $0.baseAddress!, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { break }
      complaint += chunk[0..<n]
    }
    close(errors[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
      let text = String(decoding: complaint, as: UTF8.self)
      throw Failure(description: "nft refused the rules (status \(status)): \(text)", complaint: text)
    }
  }

  /// A pipe whose ends close on exec (the child gets copies of the ones it needs by dup2).
  private static func pipe(_ ends: inout [Int32]) -> Bool {
    guard Glibc.pipe(&ends) == 0 else { return false }
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    return true
  }
}
