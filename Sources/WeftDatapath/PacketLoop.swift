import Foundation
import Synchronization
import WeftLinux

#if canImport(Glibc)
  import Glibc
#endif

/// A dedicated thread that runs a packet loop over one descriptor, and stops it on request.
///
/// The loop's body calls ``Stop/wait(milliseconds:)`` between bursts: it blocks in `poll` until
/// the descriptor is readable, a timeout passes, or ``stop()`` was called (and the body returns).
/// A pipe wakes the poll, so stopping never waits for traffic.
final class PacketLoop: Sendable {
  /// What the loop body waits on.
  struct Stop: Sendable {
    let descriptor: Int32
    let wake: Int32
    /// How long to keep looking for the next burst before sleeping (0: sleep at once).
    let spin: Duration

    /// What a wait ended with.
    enum Event {
      /// The descriptor is readable.
      case ready
      /// The timeout passed first.
      case idle
      /// The loop is to stop (or the descriptor failed).
      case stop
    }

    /// Blocks until the descriptor is readable, `milliseconds` pass (-1: no limit), or the loop
    /// is told to stop. With a spin time (and `spinning`) it first polls without blocking,
    /// yielding the CPU between polls, for up to that long: a packet that comes soon after the
    /// last one is then picked up without the thread being put to sleep and woken again, which
    /// on a virtual machine costs tens of microseconds a time.
    func wait(milliseconds: Int32 = -1, spinning: Bool = true) -> Event {
      var fds = (
        pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0),
        pollfd(fd: self.wake, events: Int16(POLLIN), revents: 0)
      )
      return withUnsafeMutablePointer(to: &fds) { pair in
        pair.withMemoryRebound(to: pollfd.self, capacity: 2) { fds in
          if spinning && self.spin > .zero {
            let deadline = ContinuousClock.now + self.spin
            repeat {
              if let event = Self.poll(fds, 0) { return event }
              sched_yield()
            } while ContinuousClock.now < deadline
          }
          while true {
            if let event = Self.poll(fds, milliseconds) { return event }
            if milliseconds >= 0 { return .idle }
          }
        }
      }
    }

    /// One poll of the descriptor and the wake pipe: nil when nothing happened in `timeout`.
    private static func poll(_ fds: UnsafeMutablePointer<pollfd>, _ timeout: Int32) -> Event? {
      while true {
        let rc = Glibc.poll(fds, 2, timeout)
        if rc < 0 && errno == EINTR { continue }
        if rc < 0 { return .stop }
        if rc == 0 { return nil }
        if fds[1].revents != 0 { return .stop }
        if fds[0].revents & Int16(POLLIN) != 0 { return .ready }
        if fds[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return .stop }
      }
    }
  }

  /// The TUN this loop serves, if it serves one (to notice a replaced device).
  let tun: TunDevice?
  private let wake: Int32
  private let wakeWriter: Int32
  private let finished = DispatchSemaphore(value: 0)
  private let stopped = Mutex(false)

  /// Starts `body` on a new thread named `name`; its waits spin for up to `spin` first.
  init(
    name: String, descriptor: Int32, tun: TunDevice? = nil, spin: Duration = .zero,
    body: @escaping @Sendable (Stop) -> Void
  ) throws {
    var pair: [Int32] = [-1, -1]
    guard pipe(&pair) == 0 else { throw SystemError.current("pipe for \(name)") }
    for fd in pair { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let wake = pair[0]
    self.wake = wake
    self.wakeWriter = pair[1]
    self.tun = tun
    let finished = self.finished
    startThread(named: name) {
      body(Stop(descriptor: descriptor, wake: wake, spin: spin))
      finished.signal()
    }
  }

  /// Tells the loop to stop and waits until it has.
  func stop() {
    let first = self.stopped.withLock { stopped in
      defer { stopped = true }
      return !stopped
    }
    guard first else { return }
    var one: UInt8 = 1
    _ = write(self.wakeWriter, &one, 1)
    self.finished.wait()
    close(self.wake)
    close(self.wakeWriter)
  }
}
