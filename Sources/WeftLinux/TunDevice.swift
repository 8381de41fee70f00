import CWeftLinux

#if canImport(Glibc)
  import Glibc
#endif

/// Options for opening a TUN or TAP device.
public struct TunOptions: Sendable, Equatable {
  /// TAP (Ethernet frames) instead of TUN (IP packets).
  public var tap: Bool = false
  /// Prefix every packet with a `virtio_net_hdr` (IFF_VNET_HDR), which carries GSO and checksum
  /// offload metadata.
  public var virtioNetHeader: Bool = false
  /// Open one queue of a multi-queue device (IFF_MULTI_QUEUE); open the same name again for more.
  public var multiQueue: Bool = false
  /// TUN_F_* offload flags to announce (TSO4/TSO6/USO4/USO6/CSUM); needs `virtioNetHeader`.
  public var offloads: UInt32 = 0
  /// Open the descriptor non-blocking.
  public var nonBlocking: Bool = false

  /// Creates options; all off by default (plain TUN, no packet information header).
  public init(
    tap: Bool = false, virtioNetHeader: Bool = false, multiQueue: Bool = false, offloads: UInt32 = 0,
    nonBlocking: Bool = false
  ) {
    self.tap = tap
    self.virtioNetHeader = virtioNetHeader
    self.multiQueue = multiQueue
    self.offloads = offloads
    self.nonBlocking = nonBlocking
  }

  /// Checksum offload (TUN_F_CSUM), required by every segmentation offload.
  public static let checksumOffload = UInt32(TUN_F_CSUM)
  /// TCP segmentation offload for IPv4 and IPv6.
  public static let tcpSegmentationOffload = UInt32(TUN_F_TSO4) | UInt32(TUN_F_TSO6)
  /// UDP segmentation offload for IPv4 and IPv6 (kernel 6.2+).
  public static let udpSegmentationOffload = WEFT_TUN_F_USO4 | WEFT_TUN_F_USO6
}

/// An open TUN/TAP queue. The device lives while a queue is open, unless made persistent.
/// Packets are read and written one per system call: the kernel takes one packet per write.
public final class TunDevice: Sendable {
  /// The device's name as the kernel chose or confirmed it.
  public let name: String
  /// The open queue descriptor.
  public let fileDescriptor: Int32
  /// The options it was opened with.
  public let options: TunOptions

  /// Opens (creating if needed) the device `name` in the calling thread's network namespace.
  /// Open it inside ``NetworkNamespace/perform(_:)`` to make it in another namespace.
  public init(name: String, options: TunOptions = TunOptions()) throws(SystemError) {
    guard name.utf8.count < 16 else { throw SystemError("open tun \(name) (name too long)", errno: EINVAL) }
    var flags = O_RDWR | O_CLOEXEC
    if options.nonBlocking { flags |= O_NONBLOCK }
    let fd = open("/dev/net/tun", flags)
    guard fd >= 0 else { throw SystemError.current("open /dev/net/tun") }
    var ifrFlags = Int32(options.tap ? IFF_TAP : IFF_TUN) | Int32(IFF_NO_PI)
    if options.virtioNetHeader { ifrFlags |= Int32(IFF_VNET_HDR) }
    if options.multiQueue { ifrFlags |= Int32(IFF_MULTI_QUEUE) }
    var chosen = [CChar](repeating: 0, count: 16)
    guard weft_tun_attach(fd, name, ifrFlags, &chosen) == 0 else {
      let e = errno
      close(fd)
      throw SystemError("create tun \(name)", errno: e)
    }
    if options.virtioNetHeader {
      var size = Int32(MemoryLayout<virtio_net_hdr>.size)
      guard weft_ioctl_ptr(fd, WEFT_TUNSETVNETHDRSZ, &size) == 0 else {
        let e = errno
        close(fd)
        throw SystemError("set vnet header size on \(name)", errno: e)
      }
    }
    if options.offloads != 0 || options.virtioNetHeader {
      guard weft_ioctl_int(fd, WEFT_TUNSETOFFLOAD, UInt(options.offloads)) == 0 else {
        let e = errno
        close(fd)
        throw SystemError("set offloads 0x\(String(options.offloads, radix: 16)) on \(name)", errno: e)
      }
    }
    self.name = String(
      decoding: chosen.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    self.fileDescriptor = fd
    self.options = options
  }

  deinit { close(self.fileDescriptor) }

  /// The features this kernel's TUN driver supports (IFF_* bits), from TUNGETFEATURES.
  public func features() throws(SystemError) -> UInt32 {
    var features: UInt32 = 0
    guard weft_ioctl_ptr(self.fileDescriptor, WEFT_TUNGETFEATURES, &features) == 0 else {
      throw SystemError.current("get tun features of \(self.name)")
    }
    return features
  }

  /// Makes the device outlive this queue (TUNSETPERSIST), so that its addresses and routes stay
  /// while the process that serves it restarts; a later open of the same name attaches to it.
  /// A persistent device is removed by deleting the link.
  public func setPersistent(_ persistent: Bool) throws(SystemError) {
    guard weft_ioctl_int(self.fileDescriptor, WEFT_TUNSETPERSIST, persistent ? 1 : 0) == 0 else {
      throw SystemError.current("set persist on \(self.name)")
    }
  }

  /// Announces the TUN_F_* offloads this reader handles (TUNSETOFFLOAD): with TSO or USO on, the
  /// kernel hands over super packets of up to 64 KiB behind a virtio header that says how to cut
  /// them. Throws (EINVAL) when the kernel does not know one of the flags.
  public func setOffloads(_ offloads: UInt32) throws(SystemError) {
    guard weft_ioctl_int(self.fileDescriptor, WEFT_TUNSETOFFLOAD, UInt(offloads)) == 0 else {
      throw SystemError.current("set offloads 0x\(String(offloads, radix: 16)) on \(self.name)")
    }
  }

  /// Reads one packet into `buffer`; returns its length, or nil when a non-blocking queue is empty.
  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int? {
    while true {
      let n = Glibc.read(self.fileDescriptor, buffer.baseAddress, buffer.count)
      if n >= 0 { return n }
      if errno == EINTR { continue }
      if errno == EAGAIN { return nil }
      throw SystemError.current("read \(self.name)")
    }
  }

  /// Writes one packet gathered from several buffers (one `writev`).
  public func write(vectors: UnsafeBufferPointer<iovec>) throws(SystemError) {
    var expected = 0
    for v in vectors { expected += v.iov_len }
    while true {
      let n = Glibc.writev(self.fileDescriptor, vectors.baseAddress, Int32(vectors.count))
      if n == expected { return }
      if n < 0 && errno == EINTR { continue }
      throw n < 0
        ? SystemError.current("write \(self.name)") : SystemError("short write to \(self.name)", errno: EIO)
    }
  }

  /// Writes one packet.
  public func write(_ packet: UnsafeRawBufferPointer) throws(SystemError) {
    while true {
      let n = Glibc.write(self.fileDescriptor, packet.baseAddress, packet.count)
      if n == packet.count { return }
      if n < 0 && errno == EINTR { continue }
      throw n < 0
        ? SystemError.current("write \(self.name)") : SystemError("short write to \(self.name)", errno: EIO)
    }
  }
}
