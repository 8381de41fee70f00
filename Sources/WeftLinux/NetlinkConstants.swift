import CWeftLinux

#if canImport(Glibc)
  import Glibc
#endif

/// Kernel constants as the integer widths netlink uses. The C headers declare some as macros,
/// some as anonymous enums and some as named enums; this file is the one place that papers
/// over the difference.
enum NL {
  static func u16<T: BinaryInteger>(_ v: T) -> UInt16 { UInt16(truncatingIfNeeded: v) }
  static func u16<T: RawRepresentable>(_ v: T) -> UInt16 where T.RawValue: BinaryInteger {
    UInt16(truncatingIfNeeded: v.rawValue)
  }

  // Message types.
  static let newLink = u16(RTM_NEWLINK)
  static let delLink = u16(RTM_DELLINK)
  static let getLink = u16(RTM_GETLINK)
  static let newAddr = u16(RTM_NEWADDR)
  static let delAddr = u16(RTM_DELADDR)
  static let getAddr = u16(RTM_GETADDR)
  static let newRoute = u16(RTM_NEWROUTE)
  static let delRoute = u16(RTM_DELROUTE)
  static let getRoute = u16(RTM_GETROUTE)
  static let newNeigh = u16(RTM_NEWNEIGH)
  static let delNeigh = u16(RTM_DELNEIGH)
  static let getNeigh = u16(RTM_GETNEIGH)
}

/// Flags for requests that create objects.
enum RequestFlags {
  static let createExclusive = NLM_F_CREATE | NLM_F_EXCL
  static let createOrReplace = NLM_F_CREATE | NLM_F_REPLACE
  static let append = NLM_F_CREATE | NLM_F_APPEND
}

/// Address family numbers as netlink headers carry them.
enum Family {
  static let unspec = UInt8(AF_UNSPEC)
  static let inet = UInt8(AF_INET)
  static let inet6 = UInt8(AF_INET6)
  static let bridge = UInt8(AF_BRIDGE)
}
