/// The typed rtnetlink API: links, addresses, routes, neighbours and FDB entries.
///
/// Every method is one kernel request (or one dump) over the underlying ``NetlinkSocket``, and
/// acts in the namespace that socket is bound to. Failures throw ``NetlinkError`` naming the
/// operation, the object and the kernel's reason.
public struct Netlink: Sendable {
  /// The socket requests go through.
  public let socket: NetlinkSocket

  /// Wraps an open socket.
  public init(socket: NetlinkSocket) { self.socket = socket }

  /// Opens a socket in the calling thread's current network namespace.
  public init() throws(SystemError) { self.socket = try NetlinkSocket() }
}
