/// A lock for async code: one holder at a time, in arrival order. An actor alone does not give
/// this: it is reentrant at every `await`.
public actor AsyncLock {
  /// Creates an unlocked lock.
  public init() {}

  private var busy = false
  private var waiting: [CheckedContinuation<Void, Never>] = []

  /// Runs `body` once every earlier holder has finished.
  public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
    if self.busy {
      await withCheckedContinuation { self.waiting.append($0) }
    } else {
      self.busy = true
    }
    defer {
      if self.waiting.isEmpty { self.busy = false } else { self.waiting.removeFirst().resume() }
    }
    return try await body()
  }
}
