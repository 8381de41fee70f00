import ArgumentParser
import Foundation
import WeftClient
import WeftControl

/// `weft ca show|rotate|retire`: the mesh CA that signs workload certificates.
struct CACommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ca", abstract: "Show or rotate the mesh CA that signs workload certificates.",
    discussion: """
      A rotation makes a new root that every sidecar trusts at once and that signs workload
      certificates once the new bundle has reached them (a minute); certificates then move to it
      as they are renewed. `weft ca retire` drops the old root when no certificate it signed can
      still be valid.
      """,
    subcommands: [Show.self, Rotate.self, Retire.self], defaultSubcommand: Show.self)

  static func print(_ status: CAStatus) {
    Swift.print("trust domain: \(status.trustDomain)")
    Swift.print("signer:       \(status.signer) (signs from \(status.signsFrom.ISO8601Format()))")
    for (n, root) in status.roots.enumerated() { Swift.print("root \(n + 1):       \(root)") }
    if let after = status.retireAfter { Swift.print("retire after: \(after.ISO8601Format())") }
  }

  /// `weft ca show`.
  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the signer, the roots, and when old roots may go.")
    @OptionGroup var client: ClientOptions
    func run() async throws {
      CACommand.print(try await reportingControlErrors { try await self.client.client().caStatus() })
    }
  }

  /// `weft ca rotate`.
  struct Rotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make a new root and start moving to it.")
    @OptionGroup var client: ClientOptions
    func run() async throws {
      CACommand.print(try await reportingControlErrors { try await self.client.client().rotateCA() })
    }
  }

  /// `weft ca retire`.
  struct Retire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Drop every root but the signer's.")
    @Flag(help: "Even while certificates from the old roots may still be valid (they stop verifying).")
    var force = false
    @OptionGroup var client: ClientOptions
    func run() async throws {
      CACommand.print(
        try await reportingControlErrors { try await self.client.client().retireCA(force: self.force) })
    }
  }
}
