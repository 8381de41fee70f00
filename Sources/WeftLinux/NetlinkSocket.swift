import CWeftLinux
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// One received netlink message: its header fields and its body (after the 16-byte header).
public struct NetlinkMessage: Sendable {
  /// nlmsg_type.
  public var type: UInt16
  /// nlmsg_flags.
  public var flags: UInt16
  /// nlmsg_seq.
  public var sequence: UInt32
  /// The body after the header.
  public var body: ArraySlice<UInt8>
}

/// A NETLINK_ROUTE socket with request/acknowledge and dump helpers.
///
/// The socket is bound to the network namespace of the thread that opened it, and stays bound
/// to it: open it inside a namespace (``NetworkNamespace/openNetlink()``), use it from anywhere.
/// Requests are serialised by a lock, so one socket may be shared between tasks.
public final class NetlinkSocket: Sendable {
  private struct State {
    var sequence: UInt32
    var buffer: [UInt8]
  }

  private let fd: Int32
  private let state: Mutex<State>

  /// Opens a NETLINK_ROUTE socket in the calling thread's network namespace.
  public init() throws(SystemError) {
    let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
    guard fd >= 0 else { throw SystemError.current("open netlink socket") }
    var one: Int32 = 1
    // Extended acks carry the kernel's own explanation of a refusal; strict checking makes
    // dumps honour our filters. Both are best effort on older kernels.
    _ = setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
    _ = setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, socklen_t(MemoryLayout<Int32>.size))
    var size: Int32 = 1 << 20
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_nl()
    addr.nl_family = sa_family_t(AF_NETLINK)
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
      }
    }
    guard rc == 0 else {
      let e = Glibc.errno
      close(fd)
      throw SystemError("bind netlink socket", errno: e)
    }
    self.fd = fd
    let seed = UInt32(truncatingIfNeeded: time(nil))
    self.state = Mutex(State(sequence: seed, buffer: [UInt8](repeating: 0, count: 1 << 16)))
  }

  deinit { close(self.fd) }

  /// Sends a request and waits for the kernel's acknowledgement.
  ///
  /// - Parameters:
  ///   - type: the RTM_* message type.
  ///   - flags: flags besides NLM_F_REQUEST and NLM_F_ACK (e.g. NLM_F_CREATE | NLM_F_EXCL).
  ///   - body: the fixed header and attributes.
  ///   - operation: names the operation in a thrown error.
  ///   - object: names the object in a thrown error.
  public func request(
    _ type: UInt16, flags: Int32, body: NetlinkEncoder, operation: String, object: String
  ) throws(NetlinkError) {
    _ = try self.exchange(
      type, flags: flags | NLM_F_ACK, body: body, operation: operation, object: object, dump: false)
  }

  /// Sends a dump request and returns every message of the reply.
  public func dump(
    _ type: UInt16, body: NetlinkEncoder, operation: String, object: String = "all"
  ) throws(NetlinkError) -> [NetlinkMessage] {
    try self.exchange(type, flags: NLM_F_DUMP, body: body, operation: operation, object: object, dump: true)
  }

  /// Sends a get request for one object and returns the reply message.
  public func get(
    _ type: UInt16, body: NetlinkEncoder, operation: String, object: String
  ) throws(NetlinkError) -> NetlinkMessage {
    let replies = try self.exchange(
      type, flags: 0, body: body, operation: operation, object: object, dump: false)
    guard let first = replies.first else {
      throw NetlinkError(operation: operation, object: object, errno: ENOENT)
    }
    return first
  }

  private func exchange(
    _ type: UInt16, flags: Int32, body: NetlinkEncoder, operation: String, object: String, dump: Bool
  ) throws(NetlinkError) -> [NetlinkMessage] {
    let result: Result<[NetlinkMessage], NetlinkError> = self.state.withLock { state in
      state.sequence &+= 1
      let seq = state.sequence
      var msg = NetlinkEncoder()
      msg.append(UInt32(16 + body.bytes.count))
      msg.append(type)
      msg.append(UInt16(truncatingIfNeeded: NLM_F_REQUEST | flags))
      msg.append(seq)
      msg.append(UInt32(0))
      msg.append(body.bytes)
      let sent = msg.bytes.withUnsafeBytes { send(self.fd, $0.baseAddress, $0.count, 0) }
      guard sent == msg.bytes.count else {
        return .failure(NetlinkError(operation: operation, object: object, errno: Glibc.errno))
      }
      var replies: [NetlinkMessage] = []
      while true {
        let n = state.buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
          if Glibc.errno == EINTR { continue }
          return .failure(NetlinkError(operation: operation, object: object, errno: Glibc.errno))
        }
        var offset = 0
        let data = state.buffer[0..<n]
        while n - offset >= 16 {
          guard let len = data.readInteger(at: offset, as: UInt32.self), len >= 16,
            offset + Int(len) <= n,
            let mtype = data.readInteger(at: offset + 4, as: UInt16.self),
            let mflags = data.readInteger(at: offset + 6, as: UInt16.self),
            let mseq = data.readInteger(at: offset + 8, as: UInt32.self)
          else {
            return .failure(NetlinkError(operation: operation, object: object, errno: EBADMSG))
          }
          let bodySlice = data[(offset + 16)..<(offset + Int(len))]
          offset += (Int(len) + 3) & ~3
          guard mseq == seq else { continue }  // a stale reply to an earlier, abandoned request
          switch Int32(mtype) {
          case NLMSG_ERROR:
            let code = bodySlice.readInteger(at: 0, as: Int32.self) ?? -EBADMSG
            if code == 0 { return .success(replies) }
            return .failure(
              NetlinkError(
                operation: operation, object: object, errno: -code,
                kernelMessage: Self.extendedAckMessage(bodySlice, flags: mflags)))
          case NLMSG_DONE:
            return .success(replies)
          case NLMSG_NOOP:
            continue
          default:
            replies.append(NetlinkMessage(type: mtype, flags: mflags, sequence: mseq, body: bodySlice))
            if !dump && flags & NLM_F_ACK == 0 { return .success(replies) }
          }
        }
      }
    }
    return try result.get()
  }

  /// Pulls NLMSGERR_ATTR_MSG out of an error message that carries extended-ack attributes.
  private static func extendedAckMessage(_ body: ArraySlice<UInt8>, flags: UInt16) -> String? {
    guard Int32(flags) & NLM_F_ACK_TLVS != 0 else { return nil }
    // struct nlmsgerr: int error; struct nlmsghdr msg; then (capped ack) the attributes, or the
    // whole original message first when the ack is not capped.
    var skip = 4 + 16
    if Int32(flags) & NLM_F_CAPPED == 0, let origLen = body.readInteger(at: 4, as: UInt32.self) {
      skip = 4 + Int(origLen)
    }
    guard skip <= body.count else { return nil }
    let attrs = NetlinkAttribute.parse(body[(body.startIndex + skip)...])
    return attrs.first(UInt16(NLMSGERR_ATTR_MSG.rawValue))?.string
  }
}
