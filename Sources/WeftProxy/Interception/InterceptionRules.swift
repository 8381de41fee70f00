/// The nftables rules a sidecar's workload namespace gets, so that all of the workload's TCP goes
/// through the proxy without the application knowing: outbound connections to the outbound
/// listener, inbound ones to the inbound listener. The proxy's own sockets carry a firewall mark
/// and pass untouched, so its connections are never caught again. Loopback and excluded ports are
/// left alone; UDP (DNS) is not intercepted.
public struct InterceptionRules: Sendable, Hashable {
  /// The outbound listener (Istio's number).
  public var outboundPort: Int = 15001
  /// The inbound listener.
  public var inboundPort: Int = 15006
  /// The admin and metrics listener (never redirected).
  public var adminPort: Int = 15000
  /// The mark the proxy sets (SO_MARK) on its own sockets.
  public var proxyMark: UInt32 = 0x5746_0001
  /// Outbound destination ports that bypass the proxy.
  public var excludedOutboundPorts: [Int] = []
  /// Inbound ports that bypass the proxy.
  public var excludedInboundPorts: [Int] = []

  /// The table's name in the workload's namespace.
  public static let table = "weft_mesh"

  /// Creates the default rules.
  public init(excludedOutboundPorts: [Int] = [], excludedInboundPorts: [Int] = []) {
    self.excludedOutboundPorts = excludedOutboundPorts
    self.excludedInboundPorts = excludedInboundPorts
  }

  /// The first problem, if any (ports out of range, or an excluded port that is one of ours).
  public var problem: String? {
    let ours = [self.outboundPort, self.inboundPort, self.adminPort]
    for p in ours + self.excludedOutboundPorts + self.excludedInboundPorts where !(1...65535).contains(p) {
      return "port \(p) is out of range (1-65535)"
    }
    if Set(ours).count != 3 { return "the outbound, inbound and admin ports must differ" }
    return nil
  }

  /// An `nft -f` script that (re)creates the table: it deletes an older one first, so applying it
  /// twice leaves one copy, and the kernel applies the script atomically.
  public var script: String {
    func set(_ ports: [Int]) -> String {
      "{ " + Array(Set(ports)).sorted().map(String.init).joined(separator: ", ") + " }"
    }
    let mark = "0x" + String(self.proxyMark, radix: 16)
    var out = """
      table ip \(Self.table)
      delete table ip \(Self.table)
      table ip \(Self.table) {
        chain outbound {
          type nat hook output priority -100; policy accept;
          meta mark \(mark) return
          oifname "lo" return
          ip daddr 127.0.0.0/8 return

      """
    if !self.excludedOutboundPorts.isEmpty {
      out += "    tcp dport \(set(self.excludedOutboundPorts)) return\n"
    }
    out += """
          meta l4proto tcp redirect to :\(self.outboundPort)
        }
        chain inbound {
          type nat hook prerouting priority -100; policy accept;
          iifname "lo" return
          tcp dport \(set([self.adminPort, self.outboundPort, self.inboundPort] + self.excludedInboundPorts)) return
          meta l4proto tcp redirect to :\(self.inboundPort)
        }
      }

      """
    return out
  }
}
