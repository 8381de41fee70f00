import Foundation
import WeftLinux
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// A multi-host lab on one machine: an underlay switch (a namespace holding a bridge) and N host
/// namespaces, each wired to the switch by a veth pair and given an underlay address.
///
/// Every namespace of lab NAME is called `weft-NAME-...`; the state lives under
/// ``Lab/stateDirectory``. Nothing is added to the root namespace.
public enum Lab {
  /// Where lab state is kept.
  public static let stateDirectory = "/run/weft/labs"
  /// The default underlay network.
  public static let defaultUnderlay = IPPrefix("198.18.0.0/24")!
  /// The most hosts a lab may have on the default /24 underlay.
  public static let maxHosts = 250

  /// Checks a lab name: 1-20 characters, lower-case letters, digits and dashes, starting with a
  /// letter or digit (it becomes part of namespace names).
  public static func validate(name: String) throws(LabError) {
    let ok =
      (1...20).contains(name.count)
      && name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
      && name.first != "-"
    guard ok else {
      throw LabError(
        .badInput,
        "lab name '\(name)' is not valid: use 1-20 lower-case letters, digits or dashes, not starting with a dash"
      )
    }
  }

  /// Fails unless the process can create namespaces.
  public static func requirePrivileges() throws(LabError) {
    guard geteuid() == 0 else {
      throw LabError(
        .notPrivileged,
        "weft lab needs root (network namespaces and mounts under /run need CAP_SYS_ADMIN and CAP_NET_ADMIN): run it with sudo"
      )
    }
  }

  /// The state file of lab `name`.
  static func stateFile(_ name: String) -> String { "\(Self.stateDirectory)/\(name)/lab.json" }

  /// The saved state of lab `name`, or nil when there is none.
  public static func load(_ name: String) -> LabState? {
    guard let data = FileManager.default.contents(atPath: Self.stateFile(name)) else { return nil }
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return try? decoder.decode(LabState.self, from: data)
  }

  /// Every saved lab, by name.
  public static func list() -> [LabState] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: Self.stateDirectory)) ?? []
    return names.sorted().compactMap { Self.load($0) }
  }

  /// The namespaces that belong to lab `name`, whether or not its state file survived.
  public static func namespaces(of name: String) -> [String] {
    let prefix = "weft-\(name)-"
    return NetworkNamespace.list().filter { ns in
      guard ns.hasPrefix(prefix) else { return false }
      let rest = ns.dropFirst(prefix.count)
      return rest == "sw"
        || (rest.hasPrefix("host") && rest.dropFirst(4).allSatisfy(\.isNumber) && rest.count > 4)
        || rest.hasPrefix("wl.")  // workloads; lab names have no dots, so this cannot be another lab's
    }
  }

  /// Brings up lab `name` with `hosts` hosts, reporting each step (and its duration) to `progress`.
  /// Changes nothing when a lab of that name exists; removes what it made when a step fails.
  @discardableResult
  public static func up(
    name: String, hosts: Int, underlay: IPPrefix = Lab.defaultUnderlay, progress: (String) -> Void = { _ in }
  ) throws(LabError) -> LabState {
    try Self.validate(name: name)
    try Self.requirePrivileges()
    guard (1...Self.maxHosts).contains(hosts) else {
      throw LabError(.badInput, "--hosts must be between 1 and \(Self.maxHosts), not \(hosts)")
    }
    guard case .v4(let base) = underlay.network.address, underlay.length <= 24 else {
      throw LabError(.badInput, "underlay \(underlay) must be an IPv4 prefix of /24 or wider")
    }
    if Self.load(name) != nil || !Self.namespaces(of: name).isEmpty {
      throw LabError(
        .exists, "lab '\(name)' exists already; nothing changed (remove it with: weft lab down \(name))")
    }
    var state = LabState(
      name: name, created: Date(), underlay: underlay.network.description, switchNamespace: "weft-\(name)-sw",
      switchBridge: "underlay", hosts: [])
    for k in 1...hosts {
      let address = IPv4Address(base.value + UInt32(k))
      state.hosts.append(
        LabHost(
          name: "host\(k)", namespace: "weft-\(name)-host\(k)", interface: "eth0",
          underlay: "\(address)/\(underlay.length)", switchPort: "host\(k)"))
    }
    let clock = ContinuousClock()
    let started = clock.now
    func step<T>(_ what: String, _ body: () throws -> T) throws(LabError) -> T {
      let t0 = clock.now
      do {
        let value = try body()
        progress("  \(what) (\(Self.format(clock.now - t0)))")
        return value
      } catch {
        Self.removeAll(name)
        throw LabError(.system, "lab '\(name)': \(what) failed: \(error); removed what was made")
      }
    }
    progress("bringing up lab '\(name)' with \(hosts) host\(hosts == 1 ? "" : "s") on \(state.underlay)")
    let switchNS = try step("create switch namespace \(state.switchNamespace)") {
      try NetworkNamespace.create(state.switchNamespace)
    }
    let switchLink = try step("create bridge \(state.switchBridge) in the switch") { () throws -> Netlink in
      let nl = try switchNS.openNetlink()
      try nl.setUp("lo")
      try nl.createLink(name: state.switchBridge, kind: .bridge)
      try nl.setUp(state.switchBridge)
      return nl
    }
    for host in state.hosts {
      try step("create \(host.name): namespace \(host.namespace), \(host.interface) \(host.underlay)") {
        let ns = try NetworkNamespace.create(host.namespace)
        try switchLink.createLink(name: host.switchPort, kind: .veth(peer: host.interface, peerNamespace: ns))
        try switchLink.setMaster(host.switchPort, master: state.switchBridge)
        try switchLink.setUp(host.switchPort)
        let nl = try ns.openNetlink()
        try nl.setUp("lo")
        try nl.addAddress(IPPrefix(host.underlay)!, to: host.interface)
        try nl.setUp(host.interface)
      }
    }
    try step("save state to \(Self.stateFile(name))") {
      try Self.save(state)
    }
    progress("lab '\(name)' is up in \(Self.format(clock.now - started))")
    return state
  }

  /// Removes every trace of lab `name`: its namespaces (and so its links) and its state.
  /// Returns what it removed; removing a lab that is not there is not an error.
  @discardableResult
  public static func down(name: String) throws(LabError) -> [String] {
    try Self.validate(name: name)
    try Self.requirePrivileges()
    return Self.removeAll(name)
  }

  @discardableResult
  static func removeAll(_ name: String) -> [String] {
    var removed: [String] = []
    var names = Set(Self.namespaces(of: name))
    if let state = Self.load(name) {
      names.formUnion(state.hosts.map(\.namespace) + [state.switchNamespace])
      names.formUnion((state.workloads ?? []).map(\.namespace))
      for w in state.workloads ?? [] {
        guard let pid = w.proxyPID, Self.isOurs(pid, lab: name) else { continue }
        Spawn.stop(pid, grace: Self.proxyStopGrace)
        removed.append("sidecar of \(w.name) (pid \(pid))")
      }
      if let control = state.control {
        for (host, pid) in control.agents.sorted(by: { $0.key < $1.key }) where Self.isOurs(pid, lab: name) {
          Spawn.stop(pid)
          removed.append("agent \(host) (pid \(pid))")
        }
        if Self.isOurs(control.controllerPID, lab: name) {
          Spawn.stop(control.controllerPID)
          removed.append("controller (pid \(control.controllerPID))")
        }
      }
    }
    for ns in names.sorted() where NetworkNamespace(ns).exists {
      if (try? NetworkNamespace(ns).delete()) != nil { removed.append(ns) }
    }
    try? FileManager.default.removeItem(atPath: "\(Self.stateDirectory)/\(name)")
    return removed
  }

  /// True when `pid` is still a weft process of this lab (not a reused pid of someone else's).
  static func isOurs(_ pid: Int32, lab name: String) -> Bool {
    guard pid > 0, let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else {
      return false
    }
    let text = String(decoding: cmdline, as: UTF8.self)
    return text.contains("weft") && text.contains("/run/weft/labs/\(name)/")
  }

  static func save(_ state: LabState) throws {
    let dir = "\(Self.stateDirectory)/\(state.name)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(state).write(to: URL(fileURLWithPath: Self.stateFile(state.name)), options: .atomic)
  }

  static func format(_ d: Duration) -> String {
    let ms = d.totalMilliseconds
    return ms < 1000 ? String(format: "%.0f ms", ms) : String(format: "%.2f s", ms / 1000)
  }
}
