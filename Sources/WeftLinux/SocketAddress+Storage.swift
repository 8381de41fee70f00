import CWeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// An IP address and UDP/TCP port.
public struct IPEndpoint: Sendable, Hashable, CustomStringConvertible {
  /// The address.
  public var address: IPAddress
  /// The port.
  public var port: UInt16

  /// Creates an endpoint.
  public init(_ address: IPAddress, _ port: UInt16) {
    self.address = address
    self.port = port
  }

  /// `1.2.3.4:5` or `[::1]:5`.
  public var description: String { address.isV4 ? "\(address):\(port)" : "[\(address)]:\(port)" }

  /// Writes the endpoint as a sockaddr_in or sockaddr_in6; returns its length.
  func store(into storage: inout sockaddr_storage) -> socklen_t {
    withUnsafeMutableBytes(of: &storage) { raw in
      raw.initializeMemory(as: UInt8.self, repeating: 0)
      switch self.address {
      case .v4(let a):
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = self.port.bigEndian
        sin.sin_addr.s_addr = a.value.bigEndian
        withUnsafeBytes(of: sin) { raw.copyMemory(from: $0) }
        return socklen_t(MemoryLayout<sockaddr_in>.size)
      case .v6(let a):
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = self.port.bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: a.octets) }
        withUnsafeBytes(of: sin6) { raw.copyMemory(from: $0) }
        return socklen_t(MemoryLayout<sockaddr_in6>.size)
      }
    }
  }

  /// Reads a sockaddr_in or sockaddr_in6.
  init?(_ storage: sockaddr_storage) {
    var storage = storage
    switch Int32(storage.ss_family) {
    case AF_INET:
      let sin = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
      self.init(.v4(IPv4Address(UInt32(bigEndian: sin.sin_addr.s_addr))), UInt16(bigEndian: sin.sin_port))
    case AF_INET6:
      let sin6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
      guard let a = withUnsafeBytes(of: sin6.sin6_addr, { IPv6Address(octets: Array($0)) }) else {
        return nil
      }
      self.init(.v6(a), UInt16(bigEndian: sin6.sin6_port))
    default:
      return nil
    }
  }
}
