import WeftLinux
import WeftWire

/// Finds the underlay interface and address of this host's namespace.
public enum Underlay {
  /// The interface holding `address` (or, without one, the first interface other than loopback
  /// with a global IPv4 address), with its MTU.
  public static func find(_ address: IPAddress?, netlink: Netlink) throws -> (IPAddress, Link) {
    let links = try netlink.links()
    for a in try netlink.addresses() {
      guard let link = links.first(where: { $0.index == a.interfaceIndex }), link.name != "lo" else {
        continue
      }
      if let address {
        if a.prefix.address == address { return (address, link) }
      } else if a.prefix.address.isV4, !Self.isOverlayDevice(link.name) {
        return (a.prefix.address, link)
      }
    }
    throw NetlinkError(
      operation: "find underlay", object: address?.description ?? "any address", errno: 19,
      kernelMessage: "no interface holds it; pass --underlay-ip with an address of this host")
  }

  private static func isOverlayDevice(_ name: String) -> Bool {
    name.hasPrefix("wbr") || name.hasPrefix("wvx") || name.hasPrefix("wv")
  }
}
