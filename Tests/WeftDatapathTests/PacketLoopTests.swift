import Dispatch
import Glibc
import Synchronization
import Testing
import WeftLinux

@testable import WeftDatapath

/// The wait between bursts of a packet loop, over pipes: what ends it, and the spin before it sleeps.
@Suite("packet loop waits")
struct PacketLoopTests {
  /// A pipe pair for the watched descriptor and one for the wake-up.
  final class Pipes {
    var data: [Int32] = [-1, -1]
    var wake: [Int32] = [-1, -1]
    init() {
      precondition(pipe(&self.data) == 0 && pipe(&self.wake) == 0)
    }
    func stop(spin: Duration) -> PacketLoop.Stop {
      PacketLoop.Stop(descriptor: self.data[0], wake: self.wake[0], spin: spin)
    }
    func write(_ fd: Int32) {
      var one: UInt8 = 1
      _ = Glibc.write(fd, &one, 1)
    }
    deinit { for fd in self.data + self.wake { close(fd) } }
  }

  @Test func readableDataStopAndTimeoutEndAWait() {
    let pipes = Pipes()
    let stop = pipes.stop(spin: .microseconds(200))
    #expect(stop.wait(milliseconds: 5) == .idle)
    #expect(stop.wait(milliseconds: 0, spinning: false) == .idle)
    pipes.write(pipes.data[1])
    #expect(stop.wait(milliseconds: 5) == .ready)
    #expect(stop.wait(milliseconds: 5, spinning: false) == .ready)
    pipes.write(pipes.wake[1])
    #expect(stop.wait() == .stop)
  }

  @Test func aSpinningWaitSeesDataThatComesDuringTheSpin() {
    let pipes = Pipes()
    // A spin of up to 2 s and no sleep after it: without the spin the wait would end at once as
    // idle; with it, it sees the data written 20 ms in. The waiter is a thread of its own, so
    // its spin never holds one of the test runner's shared threads.
    let stop = pipes.stop(spin: .seconds(2))
    let result = Mutex<PacketLoop.Stop.Event?>(nil)
    let started = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    startThread(named: "test-spin") {
      started.signal()
      let event = stop.wait(milliseconds: 0)
      result.withLock { $0 = event }
      done.signal()
    }
    started.wait()
    usleep(20_000)
    pipes.write(pipes.data[1])
    done.wait()
    #expect(result.withLock { $0 } == .ready)
  }

  @Test func aWaitThatMayNotSpinSleepsAtOnce() {
    let pipes = Pipes()
    let stop = pipes.stop(spin: .seconds(10))
    let started = ContinuousClock.now
    #expect(stop.wait(milliseconds: 1, spinning: false) == .idle)
    #expect(ContinuousClock.now - started < .seconds(5))
  }
}
