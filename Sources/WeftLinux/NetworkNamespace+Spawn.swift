import CWeftLinux
import FoundationEssentials

#if canImport(Glibc)
  import Glibc
#endif

extension NetworkNamespace {
  /// Starts `command` (looked up on PATH) in this network namespace and waits for it; returns its
  /// exit status, or 128 + signal when a signal ended it. Only the network namespace is entered.
  public func spawnAndWait(_ command: [String]) throws -> Int32 {
    let pid = try self.perform { try Spawn.start(command) }
    return try Spawn.wait(pid, command: command[0])
  }

  /// Starts `command` in this network namespace in a session of its own, with standard output
  /// and error appended to `logPath`, and returns its pid without waiting. It outlives the caller.
  public func spawnDetached(_ command: [String], logPath: String, environment: [String: String] = [:]) throws
    -> pid_t
  {
    try self.perform {
      try Spawn.start(command, logPath: logPath, environment: environment, newSession: true)
    }
  }
}

/// Process start and wait, through posix_spawn, so that a thread that entered a namespace starts
/// its child there.
public enum Spawn {
  /// Starts `command` from the calling thread. With `logPath`, standard input is /dev/null and
  /// output and error are appended to the log; `environment` entries are added to this process's.
  public static func start(
    _ command: [String], logPath: String? = nil, environment: [String: String] = [:], newSession: Bool = false
  ) throws -> pid_t {
    guard let program = command.first else { throw SystemError("start (no command)", errno: EINVAL) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let logPath {
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
      posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
      posix_spawn_file_actions_adddup2(&actions, 1, 2)
      // A detached child must not hold its parent's pipes open (a caller reading the parent's
      // output to its end would wait for the child too).
      _ = weft_spawn_add_closefrom(&actions, 3)
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // The child starts with no signal blocked and every signal at its default: a thread of this
    // process (a Dispatch or concurrency worker) may block some, and a blocked SIGALRM or SIGCHLD
    // inherited down a chain of programs makes, for example, ping inside a container hang.
    var flags = Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
    if newSession { flags |= WEFT_POSIX_SPAWN_SETSID }
    posix_spawnattr_setflags(&attributes, flags)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attributes, &all)
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    let argv = command.map { strdup($0) } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    var pid = pid_t()
    let rc = posix_spawnp(&pid, program, &actions, &attributes, argv, envp)
    guard rc == 0 else { throw SystemError("start \(program)", errno: rc) }
    return pid
  }

  /// Waits for a child; returns its exit status, or 128 + signal.
  public static func wait(_ pid: pid_t, command: String) throws -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
      guard errno == EINTR else { throw SystemError.current("wait for \(command)") }
    }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
  }

  /// Makes standard output line buffered, so a long-running command's log reaches its file line
  /// by line.
  public static func lineBufferStandardOutput() { weft_line_buffer_stdout() }

  /// True while process `pid` exists.
  public static func isAlive(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 }

  /// Sends SIGTERM to `pid`, waits up to `grace` for it to go, then SIGKILL. Reaps it if it is
  /// our child.
  public static func stop(_ pid: pid_t, grace: Duration = .seconds(3)) {
    guard pid > 0, kill(pid, SIGTERM) == 0 else { return }
    let deadline = ContinuousClock.now + grace
    while ContinuousClock.now < deadline {
      var status: Int32 = 0
      if waitpid(pid, &status, WNOHANG) == pid || !Self.isAlive(pid) { return }
      usleep(20_000)
    }
    kill(pid, SIGKILL)
    var status: Int32 = 0
    _ = waitpid(pid, &status, 0)
  }
}
