#if canImport(Glibc)
  import Glibc
#endif

/// A failed kernel call: which operation, on which object, and the kernel's own words.
public struct NetlinkError: Error, Sendable, CustomStringConvertible {
  /// What Weft was doing, e.g. `"create link"`.
  public var operation: String
  /// The object it was doing it to, e.g. `"vxlan0"` or `"route 10.0.0.0/24"`.
  public var object: String
  /// The errno value (positive), or 0 when the failure was not an errno.
  public var errno: Int32
  /// The kernel's extended-ack message, when it sent one.
  public var kernelMessage: String?

  /// Creates an error.
  public init(operation: String, object: String, errno: Int32, kernelMessage: String? = nil) {
    self.operation = operation
    self.object = object
    self.errno = errno
    self.kernelMessage = kernelMessage
  }

  /// The errno's text, as strerror gives it.
  public var errnoText: String { String(cString: strerror(self.errno)) }

  /// `create link vxlan0: File exists (kernel: ...)`.
  public var description: String {
    var s = "\(self.operation) \(self.object): \(self.errnoText)"
    if let m = self.kernelMessage, !m.isEmpty { s += " (kernel: \(m))" }
    return s
  }
}

/// A failed system call outside netlink: which call, on what, and the errno text.
public struct SystemError: Error, Sendable, CustomStringConvertible {
  /// What Weft was doing, e.g. `"open /run/netns/a"`.
  public var operation: String
  /// The errno value.
  public var errno: Int32

  /// Creates an error from an operation and errno.
  public init(_ operation: String, errno: Int32) {
    self.operation = operation
    self.errno = errno
  }

  /// Creates an error from the thread's current errno.
  public static func current(_ operation: String) -> SystemError {
    SystemError(operation, errno: Glibc.errno)
  }

  /// `operation: errno text`.
  public var description: String { "\(self.operation): \(String(cString: strerror(self.errno)))" }
}
