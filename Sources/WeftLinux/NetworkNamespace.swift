import CWeftLinux
import FoundationEssentials

#if canImport(Glibc)
  import Glibc
#endif

/// A named network namespace, kept the way `ip netns` keeps them: a bind mount of the
/// namespace file at `/run/netns/NAME`. Namespaces Weft makes are visible to `ip netns` and
/// the other way round.
///
/// Entering a namespace is per thread (`setns`), so code that must run inside one runs on a
/// dedicated OS thread (``perform(_:)``, ``run(_:)``), never on Swift's cooperative pool.
public struct NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
  /// Where named namespaces live.
  public static let directory = "/run/netns"

  /// The namespace's name.
  public let name: String

  /// The path of its namespace file: the bind mount under /run/netns, or any other namespace
  /// file (`/proc/PID/ns/net`, a runtime's own mount) given to ``init(path:)``.
  public let path: String

  /// Refers to a namespace by name (it need not exist yet).
  public init(_ name: String) {
    self.name = name
    self.path = "\(Self.directory)/\(name)"
  }

  /// Refers to a namespace by the path of its namespace file, as container runtimes pass it.
  /// Such a namespace can be entered and used, but ``delete()`` only removes names under /run/netns.
  public init(path: String) {
    self.name = path.split(separator: "/").last.map(String.init) ?? path
    self.path = path
  }

  /// The name.
  public var description: String { self.name }

  /// True when `/run/netns/NAME` exists.
  public var exists: Bool { FileManager.default.fileExists(atPath: self.path) }

  /// Names of every namespace under /run/netns, sorted.
  public static func list() -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: Self.directory)) ?? []).sorted()
  }

  /// Creates a new, empty network namespace and names it. Its loopback is left down, as the
  /// kernel makes it. Fails with EEXIST when the name is taken.
  @discardableResult
  public static func create(_ name: String) throws(SystemError) -> NetworkNamespace {
    let ns = NetworkNamespace(name)
    guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
      throw SystemError("create namespace '\(name)' (bad name)", errno: EINVAL)
    }
    try Self.prepareDirectory()
    let fd = open(ns.path, O_RDONLY | O_CREAT | O_EXCL, 0)
    guard fd >= 0 else { throw SystemError.current("create \(ns.path)") }
    close(fd)
    // unshare() on a throw-away thread so no thread of ours changes namespace, then pin the new
    // namespace by bind-mounting that thread's namespace file over the placeholder.
    let result: Result<Void, SystemError> = onDedicatedThread {
      guard weft_unshare(WEFT_CLONE_NEWNET) == 0 else {
        return .failure(.current("unshare network namespace"))
      }
      let source = "/proc/self/task/\(weft_gettid())/ns/net"
      guard weft_mount(source, ns.path, "none", UInt(MS_BIND)) == 0 else {
        return .failure(.current("bind mount \(source) on \(ns.path)"))
      }
      return .success(())
    }
    if case .failure(let e) = result {
      unlink(ns.path)
      throw e
    }
    return ns
  }

  /// Removes the namespace's name. The namespace itself goes away when nothing else holds it
  /// (a process inside it, an open descriptor); its links go with it.
  public func delete() throws(SystemError) {
    if weft_umount2(self.path, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
      throw SystemError.current("unmount \(self.path)")
    }
    if unlink(self.path) != 0 && errno != ENOENT { throw SystemError.current("remove \(self.path)") }
  }

  /// Opens the namespace file (O_RDONLY | O_CLOEXEC); the caller closes it.
  public func openDescriptor() throws(SystemError) -> Int32 {
    let fd = open(self.path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError.current("open namespace \(self.path)") }
    return fd
  }

  /// Runs `body` on a new OS thread that has entered this namespace, and waits for it.
  /// The thread ends with the call, so the namespace switch never leaks to other work.
  public func perform<T>(_ body: () throws -> T) throws -> T {
    let fd = try self.openDescriptor()
    defer { close(fd) }
    let path = self.path
    return try withoutActuallyEscaping(body) { body in
      let box = UnsafeSendable(body)
      let result: Result<T, any Error> = onDedicatedThread {
        guard weft_setns(fd, WEFT_CLONE_NEWNET) == 0 else {
          return .failure(SystemError.current("enter namespace \(path)"))
        }
        return Result { try box.value() }
      }
      return try result.get()
    }
  }

  /// Runs `body` on a dedicated OS thread inside this namespace without blocking the caller's
  /// executor.
  public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      startThread { continuation.resume(with: Result { try self.perform(body) }) }
    }
  }

  /// Opens a NETLINK_ROUTE socket bound to this namespace, usable from any thread.
  public func openNetlink() throws -> Netlink {
    Netlink(socket: try self.perform { try NetlinkSocket() })
  }

  /// Makes /run/netns exist and be a shared mount point, as `ip netns add` does, so that
  /// namespace mounts made here propagate to other mount namespaces.
  private static func prepareDirectory() throws(SystemError) {
    if mkdir(Self.directory, 0o755) != 0 && errno != EEXIST {
      throw SystemError.current("create \(Self.directory)")
    }
    let shared = UInt(MS_SHARED) | UInt(MS_REC)
    if weft_mount("", Self.directory, "none", shared) == 0 { return }
    guard errno == EINVAL else { throw SystemError.current("make \(Self.directory) shared") }
    guard weft_mount(Self.directory, Self.directory, "none", UInt(MS_BIND) | UInt(MS_REC)) == 0,
      weft_mount("", Self.directory, "none", shared) == 0
    else { throw SystemError.current("bind mount \(Self.directory)") }
  }
}

/// Carries a non-Sendable value to a thread the caller waits for.
struct UnsafeSendable<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}

/// Work handed to a new pthread.
private final class ThreadJob: @unchecked Sendable {
  let run: () -> Void
  init(_ run: @escaping () -> Void) { self.run = run }
}

/// Runs `body` on a fresh OS thread of its own, detached: nobody waits for it. A `name` (at most
/// 15 bytes are kept) shows in `top -H`, `ps -L` and perf as the thread's command.
public func startThread(named name: String? = nil, _ body: @escaping @Sendable () -> Void) {
  pthread_detach(
    spawnThread(
      ThreadJob {
        if let name { _ = weft_set_thread_name(name) }
        body()
      }))
}

/// Runs `body` on a fresh OS thread and waits for its result. Used wherever a thread changes
/// namespace: the thread ends with the call, so the change never reaches other work.
func onDedicatedThread<T>(_ body: () -> T) -> T {
  withoutActuallyEscaping(body) { body in
    var result: T?
    pthread_join(spawnThread(ThreadJob { result = body() }), nil)
    return result!
  }
}

/// Starts a new OS thread that runs `job`.
private func spawnThread(_ job: ThreadJob) -> pthread_t {
  var thread = pthread_t()
  let rc = pthread_create(
    &thread, nil,
    { raw in
      Unmanaged<ThreadJob>.fromOpaque(raw!).takeRetainedValue().run()
      return nil
    }, Unmanaged.passRetained(job).toOpaque())
  precondition(rc == 0, "pthread_create failed: \(rc)")
  return thread
}
