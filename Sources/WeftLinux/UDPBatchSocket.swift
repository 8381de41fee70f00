import CWeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// A fixed pool of datagram slots for batched UDP I/O: `capacity` buffers of `slotSize` bytes,
/// allocated once. Reuse one batch per I/O loop so memory stays flat under load.
public final class DatagramBatch {
  /// How many datagrams the batch holds at most (at most 64 per system call).
  public let capacity: Int
  /// Bytes per slot (64 KiB lets a GRO-coalesced or GSO super-datagram fit).
  public let slotSize: Int
  /// How many slots are filled (after a receive) or to be sent.
  public var count: Int = 0
  private let storage: UnsafeMutableRawBufferPointer
  private let slots: UnsafeMutablePointer<weft_datagram>

  /// Allocates `capacity` slots of `slotSize` bytes.
  public init(capacity: Int = 64, slotSize: Int = 65_536) {
    precondition(capacity > 0 && capacity <= 64, "a batch holds 1...64 datagrams")
    self.capacity = capacity
    self.slotSize = slotSize
    self.storage = .allocate(byteCount: capacity * slotSize, alignment: 16)
    self.slots = .allocate(capacity: capacity)
    for i in 0..<capacity {
      self.slots[i] = weft_datagram()
      self.slots[i].base = self.storage.baseAddress! + i * slotSize
      self.slots[i].capacity = slotSize
    }
  }

  deinit {
    self.storage.deallocate()
    self.slots.deallocate()
  }

  /// The whole buffer of slot `i`, to fill before a send.
  public func buffer(_ i: Int) -> UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer(start: self.slots[i].base, count: self.slotSize)
  }

  /// The received or to-be-sent bytes of slot `i`.
  public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: self.slots[i].base, count: self.slots[i].length)
  }

  /// The length of slot `i`.
  public func length(_ i: Int) -> Int { self.slots[i].length }

  /// The peer of a received slot.
  public func peer(_ i: Int) -> IPEndpoint? { IPEndpoint(self.slots[i].peer) }

  /// The segment size of slot `i`: the GRO size of a received one, the GSO size of one to send
  /// (0 when neither coalesced nor to be cut).
  public func segmentSize(_ i: Int) -> Int { Int(self.slots[i].segment_size) }

  /// Sets slot `i` to send `length` bytes to `peer`, segmented into `segmentSize`-byte
  /// datagrams by the kernel when `segmentSize` > 0 (UDP GSO).
  public func set(_ i: Int, length: Int, peer: IPEndpoint, segmentSize: Int = 0) {
    precondition(length <= self.slotSize)
    self.slots[i].length = length
    self.slots[i].peer_length = peer.store(into: &self.slots[i].peer)
    self.slots[i].segment_size = UInt16(segmentSize)
  }

  fileprivate var raw: UnsafeMutablePointer<weft_datagram> { self.slots }
}

/// A UDP socket with batched send and receive (sendmmsg/recvmmsg), UDP GSO and UDP GRO.
public final class UDPBatchSocket: Sendable {
  /// The socket descriptor.
  public let fileDescriptor: Int32
  /// The bound local endpoint.
  public let local: IPEndpoint

  /// Opens a UDP socket bound to `local` (port 0 picks one) in the calling thread's namespace.
  public init(bind local: IPEndpoint, nonBlocking: Bool = false) throws(SystemError) {
    let family = local.address.isV4 ? AF_INET : AF_INET6
    var type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    if nonBlocking { type |= Int32(SOCK_NONBLOCK.rawValue) }
    let fd = socket(family, type, 0)
    guard fd >= 0 else { throw SystemError.current("open udp socket") }
    var storage = sockaddr_storage()
    let length = local.store(into: &storage)
    let rc = withUnsafePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
    }
    guard rc == 0 else {
      let e = errno
      close(fd)
      throw SystemError("bind udp \(local)", errno: e)
    }
    var bound = sockaddr_storage()
    var boundLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = withUnsafeMutablePointer(to: &bound) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &boundLength) }
    }
    self.fileDescriptor = fd
    self.local = IPEndpoint(bound) ?? local
  }

  deinit { close(self.fileDescriptor) }

  /// Asks for `bytes` of receive and send buffer (beyond the system limit where privileged:
  /// SO_RCVBUFFORCE, else as much as SO_RCVBUF allows), so a burst is not dropped while the
  /// reader is busy.
  public func setBufferSizes(_ bytes: Int32) {
    var size = bytes
    let length = socklen_t(MemoryLayout<Int32>.size)
    for (forced, plain) in [(SO_RCVBUFFORCE, SO_RCVBUF), (SO_SNDBUFFORCE, SO_SNDBUF)]
    where setsockopt(self.fileDescriptor, SOL_SOCKET, forced, &size, length) != 0 {
      _ = setsockopt(self.fileDescriptor, SOL_SOCKET, plain, &size, length)
    }
  }

  /// Turns on UDP GRO (the kernel may hand over several datagrams of one flow as one buffer with
  /// their segment size). Returns false when the kernel refuses; callers then go without.
  public func enableGRO() -> Bool {
    var one: Int32 = 1
    return setsockopt(
      self.fileDescriptor, WEFT_SOL_UDP, WEFT_UDP_GRO, &one, socklen_t(MemoryLayout<Int32>.size)) == 0
  }

  /// Probes whether the kernel accepts UDP GSO (UDP_SEGMENT) on this socket.
  public func supportsGSO() -> Bool {
    var size: Int32 = 1400
    guard
      setsockopt(
        self.fileDescriptor, WEFT_SOL_UDP, WEFT_UDP_SEGMENT, &size, socklen_t(MemoryLayout<Int32>.size)) == 0
    else { return false }
    size = 0
    _ = setsockopt(
      self.fileDescriptor, WEFT_SOL_UDP, WEFT_UDP_SEGMENT, &size, socklen_t(MemoryLayout<Int32>.size))
    return true
  }

  /// Sends slots `start..<batch.count` in as few system calls as possible; returns how many
  /// were sent (fewer when the socket buffer filled on a non-blocking socket). An error is thrown
  /// only when the first of them fails; the caller can skip that one and send the rest.
  @discardableResult
  public func send(_ batch: DatagramBatch, from start: Int = 0) throws(SystemError) -> Int {
    var sent = start
    while sent < batch.count {
      let n = weft_send_batch(self.fileDescriptor, batch.raw + sent, UInt32(batch.count - sent))
      if n < 0 {
        if errno == EINTR { continue }
        if errno == EAGAIN && sent > start { break }
        throw SystemError.current("send to udp from \(self.local)")
      }
      sent += Int(n)
    }
    return sent - start
  }

  /// Receives up to `batch.capacity` datagrams into the batch (waiting for the first unless
  /// `nonBlocking`); sets and returns `batch.count`.
  @discardableResult
  public func receive(into batch: DatagramBatch, nonBlocking: Bool = false) throws(SystemError) -> Int {
    while true {
      let n = weft_recv_batch(self.fileDescriptor, batch.raw, UInt32(batch.capacity), nonBlocking ? 1 : 0)
      if n >= 0 {
        batch.count = Int(n)
        return batch.count
      }
      if errno == EINTR { continue }
      if errno == EAGAIN {
        batch.count = 0
        return 0
      }
      throw SystemError.current("receive udp on \(self.local)")
    }
  }
}
