import ArgumentParser
import Foundation
import WeftClient
import WeftIdentity
import WeftModel
import WeftProxy

/// `weft policy check`: what the access policies say of one caller reaching one service, and
/// which rule decides, as the service's sidecars would decide it.
struct PolicyCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "policy", abstract: "Explain access policies.", subcommands: [PolicyCheckCommand.self])
}

/// `weft policy check --from CALLER --to SERVICE [--method M --path P -H 'name: value']`.
struct PolicyCheckCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Say whether a caller may reach a service, and which policy and rule decide it.",
    discussion: """
      The caller is a workload's name or a SPIFFE identity (spiffe://DOMAIN/ns/NS/sa/ACCOUNT), or
      'plaintext' for a caller without a sidecar. Without --method and --path the call is taken as a
      TCP connection. Exits 0 when allowed, 1 when denied.
      """)

  @Option(help: "The caller: a workload, a spiffe:// identity, or 'plaintext'.")
  var from: String

  @Option(help: "The service called.")
  var to: String

  @Option(help: "The HTTP method (with --path).")
  var method: String?

  @Option(help: "The HTTP path (with --method).")
  var path: String?

  @Option(name: .customShort("H"), help: "A request header 'Name: value' (repeat for several).")
  var header: [String] = []

  @OptionGroup var client: ClientOptions

  func run() async throws {
    let control = try self.client.client()
    let services = try await control.list(.service).items
    let workloads = try await control.list(.workload).items
    let policies = try await control.list(.accessPolicy).items
    guard let service = services.first(where: { $0.metadata.name == self.to }),
      let spec = try? service.decodeSpec(ServiceSpec.self)
    else { throw fail("no service '\(self.to)' (see: weft get services)") }
    let trustDomain = (try? await control.trust())?.trustDomain ?? "weft.local"
    let peer: SPIFFEID?
    if self.from == "plaintext" {
      peer = nil
    } else if self.from.hasPrefix("spiffe://") {
      guard let id = SPIFFEID(uri: self.from) else { throw fail("'\(self.from)' is not a SPIFFE identity") }
      peer = id
    } else {
      guard let workload = workloads.first(where: { $0.metadata.name == self.from }),
        let names = MeshIdentity.names(of: workload, services: services),
        let id = SPIFFEID(trustDomain: trustDomain, namespace: names.namespace, serviceAccount: names.account)
      else { throw fail("no workload '\(self.from)' (give a workload, a spiffe:// identity or plaintext)") }
      peer = id
    }
    var request: RequestView?
    if self.method != nil || self.path != nil {
      var headers: [String: String] = [:]
      for line in self.header {
        let parts = line.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { throw fail("-H '\(line)' is not 'Name: value'") }
        headers[parts[0].trimmingCharacters(in: .whitespaces).lowercased()] = parts[1].trimmingCharacters(
          in: .whitespaces)
      }
      let fixed = headers
      request = RequestView(method: self.method ?? "GET", target: self.path ?? "/", header: { fixed[$0] })
    }
    let engine = AccessPolicyEngine(
      policies.compactMap { r in
        (try? r.decodeSpec(AccessPolicySpec.self)).map { ProxyAccessPolicy(name: r.metadata.name, spec: $0) }
      })
    let decision = engine.decide(service: self.to, namespace: spec.network, peer: peer, request: request)
    let call = request.map { "\($0.method) \($0.target)" } ?? "a TCP connection"
    print("\(decision.allowed ? "ALLOW" : "DENY"): \(peer?.uri ?? "plaintext") -> \(self.to), \(call)")
    print("  \(decision.reason)")
    if !decision.allowed { throw ExitCode(1) }
  }
}
