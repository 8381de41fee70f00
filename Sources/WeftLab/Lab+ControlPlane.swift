import Foundation
import WeftClient
import WeftControl
import WeftLinux
import WeftModel

extension Lab {
  /// The lab's own directory under /run/weft/labs.
  public static func directory(_ name: String) -> String { "\(Self.stateDirectory)/\(name)" }

  /// The weft executable this process runs from, used to start the lab's controller and agents.
  public static var executable: String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
  }

  /// Starts the lab's control plane: a controller in the root namespace listening on a loopback
  /// port and on a unix socket in the lab's directory, then one agent per host inside the host's
  /// namespace (reaching the controller through the socket), and waits until every host joined.
  /// On failure the whole lab is removed.
  /// `controllerArguments` are added to the controller's command line (`weft controller
  /// --help`), e.g. a short certificate lifetime to watch rotations.
  public static func startControlPlane(
    name: String, datapath: String = "kernel", controllerArguments: [String] = [],
    progress: (String) -> Void = { _ in }
  ) async throws(LabError) {
    guard var state = Self.load(name) else {
      throw LabError(.notFound, "no lab '\(name)' (see: weft lab list)")
    }
    let dir = Self.directory(name)
    let clock = ContinuousClock()
    do {
      let t0 = clock.now
      var rng = SystemRandomNumberGenerator()
      let token = (0..<16).map { _ in String(UInt8.random(in: 0...255, using: &rng), radix: 16) }.joined()
      let (controllerPID, urls) = try await Self.launchController(
        lab: name, token: token, arguments: controllerArguments
      ) { pid in
        state.control = LabControlPlane(
          controllerPID: pid, urls: [], token: token, datapath: datapath, agents: [:],
          executable: Self.executable, controllerArguments: controllerArguments)
        try Self.save(state)
      }
      state.control?.urls = urls
      state.control?.ca = Self.caFile(name)
      try Self.save(state)
      progress(
        "  start controller, pid \(controllerPID), \(urls.joined(separator: " ")) (\(Self.format(clock.now - t0)))"
      )

      let t1 = clock.now
      guard let socketURL = state.control?.socketURL, let loopback = state.control?.loopbackURL else {
        throw LabError(.system, "the controller did not report its addresses")
      }
      let client = try ControlClient(
        baseURL: loopback,
        credentials: ClientCredentials(
          token: token, ca: try String(contentsOfFile: Self.caFile(name), encoding: .utf8)))
      for (i, host) in state.hosts.enumerated() {
        // Each agent joins with a token good for its own host, once, for ten minutes.
        let bootstrap = try await client.createToken(
          TokenRequest(
            role: .bootstrap, ttlSeconds: 600, uses: 1, host: host.name, description: "lab \(name)"))
        state.control?.agents[host.name] = try Self.startAgent(
          lab: name, host: host, controller: socketURL, bootstrapToken: bootstrap.token,
          datapath: Self.datapath(datapath, host: i))
        try Self.save(state)
      }
      let expected = Set(state.hosts.map(\.name))
      _ = try await Self.waitFor("every agent to join (see \(dir)/host*.log)") { () -> Bool? in
        let joined = Set(((try? await client.list(.host))?.items ?? []).map(\.metadata.name))
        return joined.isSuperset(of: expected) ? true : nil
      }
      progress(
        "  start \(state.hosts.count) agent(s), datapath \(datapath); all joined (\(Self.format(clock.now - t1)))"
      )
    } catch {
      Self.removeAll(name)
      if let e = error as? LabError { throw e }
      throw LabError(.system, "lab '\(name)': starting the control plane failed: \(error); removed the lab")
    }
  }

  /// Starts the lab's controller (loopback port and unix socket, data in the lab directory) and
  /// waits until it listens; `started` records the pid before the wait, so a failure can stop it.
  static func launchController(
    lab name: String, token: String, executable: String = Lab.executable, arguments: [String] = [],
    started: (Int32) throws -> Void
  ) async throws -> (Int32, [String]) {
    let dir = Self.directory(name)
    let ready = "\(dir)/controller.ready"
    try? FileManager.default.removeItem(atPath: ready)
    let pid = try Spawn.start(
      [
        executable, "controller", "--listen", "127.0.0.1:0", "--listen", "unix:\(dir)/controller.sock",
        "--data", "\(dir)/controller", "--ready-file", ready,
      ] + arguments, logPath: "\(dir)/controller.log", environment: ["WEFT_TOKEN": token], newSession: true)
    try started(pid)
    let urls = try await Self.waitFor("the controller to listen (see \(dir)/controller.log)") {
      () -> [String]? in
      guard let text = try? String(contentsOfFile: ready, encoding: .utf8) else { return nil }
      let lines = text.split(separator: "\n").map(String.init)
      return lines.count == 2 ? lines : nil
    }
    return (pid, urls)
  }

  /// The control plane's CA certificate of a lab's controller.
  public static func caFile(_ name: String) -> String {
    "\(Self.directory(name))/controller/control-ca/ca.pem"
  }

  /// Stops the lab's controller (agents and datapaths carry on with what they have).
  public static func stopController(lab name: String) throws(LabError) {
    guard let state = Self.load(name), let control = state.control else {
      throw LabError(.notFound, "lab '\(name)' runs no control plane")
    }
    if Self.isOurs(control.controllerPID, lab: name) { Spawn.stop(control.controllerPID) }
  }

  /// Starts the lab's controller again on its old data (restarting it if it runs); the agents
  /// find it on the same unix socket. Its loopback port may change: see `weft lab env`.
  public static func restartController(lab name: String) async throws(LabError) {
    guard var state = Self.load(name), let control = state.control else {
      throw LabError(.notFound, "lab '\(name)' runs no control plane")
    }
    if Self.isOurs(control.controllerPID, lab: name) { Spawn.stop(control.controllerPID) }
    do {
      let executable = control.executable ?? Self.executable
      let (_, urls) = try await Self.launchController(
        lab: name, token: control.token, executable: executable, arguments: control.controllerArguments ?? []
      ) {
        pid in
        state.control?.controllerPID = pid
        try Self.save(state)
      }
      state.control?.urls = urls
      try Self.save(state)
    } catch {
      throw LabError(.system, "lab '\(name)': restarting the controller failed: \(error)")
    }
  }

  /// Starts the agent of one lab host inside its namespace; returns its pid. The agent trusts
  /// the lab's control-plane CA and joins with `bootstrapToken` unless it already holds a
  /// certificate in its state directory.
  static func startAgent(
    lab name: String, host: LabHost, controller: String, bootstrapToken: String?, datapath: String,
    executable: String = Lab.executable
  ) throws -> Int32 {
    let dir = Self.directory(name)
    let address = host.underlay.split(separator: "/").first.map(String.init) ?? host.underlay
    return try NetworkNamespace(host.namespace).spawnDetached(
      [
        executable, "agent", "--controller", controller, "--name", host.name, "--underlay-ip", address,
        "--datapath", datapath, "--state", "\(dir)/\(host.name)", "--ca", Self.caFile(name),
      ], logPath: "\(dir)/\(host.name).log",
      environment: bootstrapToken.map { ["WEFT_BOOTSTRAP_TOKEN": $0] } ?? [:])
  }

  /// Stops a lab host's agent (its datapath stays as it is); `start` starts it again.
  public static func stopAgent(lab name: String, host: String) throws(LabError) {
    guard var state = Self.load(name), let pid = state.control?.agents[host] else {
      throw LabError(.notFound, "lab '\(name)' has no agent on '\(host)'")
    }
    if Self.isOurs(pid, lab: name) { Spawn.stop(pid) }
    state.control?.agents[host] = 0
    try? Self.save(state)
  }

  /// The datapaths a lab can run: one for every host, or a comma-separated list, one per host in
  /// order (the last repeats), so one lab can mix them.
  public static let datapaths = ["kernel", "userspace"]

  /// Checks a `--datapath` value: `kernel`, `userspace`, or a list such as `userspace,kernel`.
  public static func validateDatapath(_ spec: String) throws(LabError) {
    for d in spec.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    where !datapaths.contains(d) {
      throw LabError(
        .badInput, "datapath '\(d)' in '\(spec)' is not one of \(datapaths.joined(separator: ", "))")
    }
  }

  /// The datapath of host number `index` (from 0) under `spec`.
  static func datapath(_ spec: String, host index: Int) -> String {
    let list = spec.split(separator: ",").map(String.init)
    return list.isEmpty ? "kernel" : list[min(index, list.count - 1)]
  }

  /// Starts a lab host's agent again after ``stopAgent(lab:host:)`` (or restarts a running one).
  public static func startAgent(lab name: String, host hostName: String) async throws(LabError) {
    guard var state = Self.load(name), let control = state.control, let socket = control.socketURL,
      let host = state.hosts.first(where: { $0.name == hostName })
    else { throw LabError(.notFound, "lab '\(name)' has no agent on '\(hostName)'") }
    if let pid = control.agents[hostName], Self.isOurs(pid, lab: name) { Spawn.stop(pid) }
    // A token in case the agent's certificate is gone (unused when it still has one).
    let bootstrap = try? await Self.client(name).createToken(
      TokenRequest(role: .bootstrap, ttlSeconds: 600, uses: 1, host: hostName, description: "lab \(name)"))
    do {
      state.control?.agents[hostName] = try Self.startAgent(
        lab: name, host: host, controller: socket, bootstrapToken: bootstrap?.token,
        datapath: Self.datapath(control.datapath, host: state.hosts.firstIndex { $0.name == hostName } ?? 0),
        executable: control.executable ?? Self.executable)
      try Self.save(state)
    } catch {
      throw LabError(.system, "lab '\(name)': starting the agent of \(hostName) failed: \(error)")
    }
  }

  /// Polls `check` every 100 ms for up to 20 s until it gives a value.
  static func waitFor<T>(_ what: String, _ check: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
      if let value = try await check() { return value }
      try await Task.sleep(for: .milliseconds(100))
    }
    throw LabError(.system, "timed out waiting for \(what)")
  }

  /// A client for the lab's controller over loopback.
  public static func client(_ name: String) throws(LabError) -> ControlClient {
    guard let state = Self.load(name) else {
      throw LabError(.notFound, "no lab '\(name)' (see: weft lab list)")
    }
    guard let control = state.control, let url = control.loopbackURL else {
      throw LabError(.badInput, "lab '\(name)' runs no control plane (it was made with --no-control-plane)")
    }
    do {
      let ca = try String(contentsOfFile: control.ca ?? Self.caFile(name), encoding: .utf8)
      return try ControlClient(baseURL: url, credentials: ClientCredentials(token: control.token, ca: ca))
    } catch {
      throw LabError(.system, "lab '\(name)': cannot use the controller's CA: \(error)")
    }
  }
}
