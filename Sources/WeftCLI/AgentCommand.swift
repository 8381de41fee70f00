import ArgumentParser
import Foundation
import Hummingbird
import WeftAgent
import WeftClient
import WeftControl
import WeftDatapath
import WeftLinux
import WeftWire

/// `weft agent`: the host agent.
struct AgentCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "agent",
    abstract: "Run the host agent: join the controller and keep this host's datapath in step.")

  @OptionGroup var client: ClientOptions

  @Option(help: "This host's name (default: the system host name).")
  var name: String?

  @Option(help: "The underlay address (default: the first global IPv4 address of this namespace).")
  var underlayIP: String?

  @Option(help: "The datapath: kernel (the kernel's VXLAN) or userspace (Weft's VTEP over TUN and UDP).")
  var datapath: String = "kernel"

  @Option(
    help: ArgumentHelp(
      "Userspace datapath: microseconds a TUN reader keeps polling after a small burst before it sleeps (0: sleep at once; default: $WEFT_VTEP_SPIN_US, else \(UserspaceDatapath.defaultSpinMicroseconds)).",
      valueName: "us"))
  var vtepSpin: Int?

  @Option(help: "Directory for the agent's state (the workload address allocations).")
  var state: String = "/var/lib/weft/agent"

  @Option(help: "The unix socket for the local API the CNI plugin uses (default: STATE/agent.sock).")
  var api: String?

  @Option(help: "Seconds between full reconciles without events.")
  var resync: Int = 30

  @Option(help: "Where the workloads' DNS resolver listens (UDP), or 'off'.")
  var dns: String = "0.0.0.0:53"

  @Option(
    help:
      "A bootstrap token for this host's first certificate (default: $WEFT_BOOTSTRAP_TOKEN; an operator makes one with: weft token create --bootstrap --host NAME)."
  )
  var bootstrapToken: String?

  func run() async throws {
    guard datapath == "kernel" || datapath == "userspace" else {
      throw ValidationError("--datapath '\(datapath)' is not a datapath; use kernel or userspace")
    }
    let spin =
      vtepSpin ?? ProcessInfo.processInfo.environment["WEFT_VTEP_SPIN_US"].flatMap { Int($0) }
      ?? UserspaceDatapath.defaultSpinMicroseconds
    guard (0...10_000).contains(spin) else {
      throw ValidationError("--vtep-spin \(spin) is out of range; give 0 to 10000 microseconds")
    }
    var wanted: IPAddress?
    if let underlayIP {
      guard let a = IPAddress(underlayIP) else {
        throw ValidationError("--underlay-ip '\(underlayIP)' is not an IP address")
      }
      wanted = a
    }
    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    let netlink = try Netlink()
    let (address, link) = try Underlay.find(wanted, netlink: netlink)
    let hostName = name ?? ProcessInfo.processInfo.hostName
    let credentials = HostCredentials(directory: state, host: hostName)
    let controlClient: ControlClient
    do {
      let obtained = try await credentials.obtain(
        controller: client.url,
        bootstrapToken: bootstrapToken ?? ProcessInfo.processInfo.environment["WEFT_BOOTSTRAP_TOKEN"],
        ca: try client.caPEM())
      controlClient = try ControlClient(baseURL: client.url, credentials: obtained)
    } catch let error as ControlError {
      throw ValidationError("host \(hostName) could not get its certificate: \(error.message)")
    }
    print(
      "host certificate in \(state)/host.pem, renewed from \((try? credentials.renewAt()).map { "\($0)" } ?? "now")"
    )
    let userspace =
      datapath == "userspace" ? UserspaceDatapath(netlink: netlink, spin: .microseconds(spin)) : nil
    let agent = Agent(
      client: controlClient,
      configuration: .init(
        name: hostName, underlay: address, underlayDevice: link.name, underlayMTU: link.mtu,
        datapath: datapath,
        resync: .seconds(resync)),
      datapath: userspace.map { $0 as any Datapath } ?? KernelDatapath(netlink: netlink),
      log: { line in print(line) })
    print(
      "weft agent \(hostName): underlay \(address) on \(link.name) (mtu \(link.mtu)), datapath \(datapath)")
    let socket = api ?? "\(state)/agent.sock"
    try? FileManager.default.removeItem(atPath: socket)
    let server = Application(
      router: AgentAPI.router(
        agent: agent, netlink: netlink, ipam: IPAM(path: "\(state)/ipam.json"), client: controlClient,
        hostName: hostName, datapath: datapath,
        sidecars: SidecarRegistry(directory: "\(state)/sidecars", agentSocket: socket),
        counters: { userspace?.counters }),
      configuration: .init(address: .unixDomainSocket(path: socket), serverName: "weft-agent"))
    print("local API on unix:\(socket)")
    var resolver: AgentDNS?
    if self.dns != "off" {
      let parts = self.dns.split(separator: ":")
      guard parts.count == 2, IPv4Address(String(parts[0])) != nil, let port = Int(parts[1]) else {
        throw ValidationError("--dns '\(self.dns)' is not IPv4:PORT or off")
      }
      do {
        resolver = try await AgentDNS.start(host: String(parts[0]), port: port, agent: agent)
        print("DNS for *.weft on udp:\(self.dns)")
      } catch {
        print("DNS not served: cannot listen on udp:\(self.dns): \(error)")
      }
    }
    defer { if let resolver { Task { await resolver.stop() } } }
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await agent.run() }
      group.addTask { await credentials.renewLoop(client: controlClient) { print($0) } }
      group.addTask { try await server.runService() }
      try await group.next()
      group.cancelAll()
    }
  }
}
