import ArgumentParser
import Foundation
import WeftEcho

/// `weft echo serve|call`: the mesh's test workload and its client.
struct EchoCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "echo", abstract: "A test workload (serve) and a client for it (call).",
    subcommands: [EchoServeCommand.self, EchoCallCommand.self])
}

/// `weft echo serve`.
struct EchoServeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Answer HTTP/1.1 with this workload's name; optionally slow or failing.",
    discussion: """
      Every answer carries the name in its body and in the x-weft-workload header; a request with a
      body gets it echoed. --ws-port adds a WebSocket echo (greets with the name, then echoes
      frames); --h2-port an HTTP/2 prior-knowledge echo that streams DATA back as it arrives and
      ends with trailers (grpc-status: 0). GET /healthz is always 200. GET or PUT /_weft/echo reads or changes the
      behaviour at run time (JSON: name, latencyMilliseconds, failRatio, failStatus).
      """)

  @Option(name: .long, help: "A port to listen on (repeat for several).")
  var port: [Int] = [8080]

  @Option(name: .long, help: "The address to listen on.")
  var host = "0.0.0.0"

  @Option(name: .long, help: "The name to answer with (default: $WEFT_WORKLOAD, else the host name).")
  var name: String?

  @Option(name: .long, help: "Milliseconds added to every answer.")
  var latencyMs = 0

  @Option(name: .long, help: "The share of requests (0...1) to fail.")
  var failRatio = 0.0

  @Option(name: .long, help: "The status of a failed request.")
  var failStatus = 503

  @Option(name: .long, help: "Also serve a WebSocket echo on this port.")
  var wsPort: Int?

  @Option(name: .long, help: "Also serve an HTTP/2 (prior knowledge) streaming echo on this port.")
  var h2Port: Int?

  func run() async throws {
    let name =
      self.name ?? ProcessInfo.processInfo.environment["WEFT_WORKLOAD"] ?? ProcessInfo.processInfo.hostName
    let behaviour = EchoBehaviour(
      name: name, latencyMilliseconds: self.latencyMs, failRatio: self.failRatio, failStatus: self.failStatus)
    if let problem = behaviour.problem { throw ValidationError(problem) }
    let shared = EchoBehaviourBox(behaviour)
    for p in self.port + [self.wsPort, self.h2Port].compactMap({ $0 }) where !(0...65535).contains(p) {
      throw ValidationError("port \(p) is not a port (0-65535)")
    }
    if let wsPort {
      let listener = try await EchoStreamServer.webSocket(host: self.host, port: wsPort, name: name)
      print("weft echo: \(name) WebSocket on \(self.host):\(listener.port)")
    }
    if let h2Port {
      let listener = try await EchoStreamServer.http2(
        host: self.host, port: h2Port, name: name, behaviour: shared)
      print("weft echo: \(name) HTTP/2 on \(self.host):\(listener.port)")
    }
    try await EchoServer.run(host: self.host, ports: self.port, shared: shared) { port in
      print("weft echo: \(name) listening on \(self.host):\(port)")
    }
  }
}

/// `weft echo call`.
struct EchoCallCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "call", abstract: "Call a URL N times or for a while; report statuses, workloads, latency.")

  enum Format: String, ExpressibleByArgument { case text, json }

  @Argument(help: "The URL, e.g. http://backend.weft:8080/.")
  var url: String

  @Option(name: .short, help: "How many requests (ignored with --duration).")
  var n = 100

  @Option(name: .long, help: "Call for this many seconds instead of -n times.")
  var duration: Double?

  @Option(name: .short, help: "Requests in flight at once.")
  var c = 1

  @Option(name: .customShort("H"), help: "A request header 'Name: value' (repeat for several).")
  var header: [String] = []

  @Option(name: .shortAndLong, help: "text or json.")
  var output: Format = .text

  func run() async throws {
    guard self.n > 0, self.c > 0 else { throw ValidationError("-n and -c must be positive") }
    if let d = self.duration, d <= 0 { throw ValidationError("--duration must be positive") }
    let headers = try self.header.map { line -> (String, String) in
      guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
        throw ValidationError("-H '\(line)' is not 'Name: value'")
      }
      return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
    let caller = EchoCaller(
      url: self.url, count: self.n, duration: self.duration.map { .milliseconds(Int($0 * 1000)) },
      concurrency: self.c, headers: headers)
    let report = await caller.run()
    switch self.output {
    case .text: print(report.text, terminator: "")
    case .json:
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }
    if report.requests > 0 && report.errors.values.reduce(0, +) == report.requests { throw ExitCode(1) }
  }
}
