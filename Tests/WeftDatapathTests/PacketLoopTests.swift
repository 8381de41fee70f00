import Glibc
import Testing

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

  @Test func aSpinningWaitSeesDataThatComesDuringTheSpin() async {
    let pipes = Pipes()
    // A spin of 10 s and no sleep after it: the wait can only end early by seeing the data
    // written 20 ms in, while it spins.
    let stop = pipes.stop(spin: .seconds(10))
    let writer = pipes.data[1]
    let started = ContinuousClock.now
    async let waited = Task.detached { stop.wait(milliseconds: 0) }.value
    try? await Task.sleep(for: .milliseconds(20))
    pipes.write(writer)
    #expect(await waited == .ready)
    #expect(ContinuousClock.now - started < .seconds(5))
  }

  @Test func aWaitThatMayNotSpinSleepsAtOnce() {
    let pipes = Pipes()
    let stop = pipes.stop(spin: .seconds(10))
    let started = ContinuousClock.now
    #expect(stop.wait(milliseconds: 1, spinning: false) == .idle)
    #expect(ContinuousClock.now - started < .seconds(5))
  }
}
