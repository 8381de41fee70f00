import Foundation
import WeftWire

#if canImport(Glibc)
  import Glibc
#endif

/// Address management for the workloads of one host: which address of the host's subnet belongs
/// to which workload, per network. Kept in a JSON file under an exclusive lock, so concurrent
/// attaches (several CNI calls, the lab) never hand out one address twice, and a restart keeps it.
public struct IPAM: Sendable {
  /// The file the allocations live in.
  public let path: String

  /// Uses (creating when needed) the allocation file at `path`.
  public init(path: String) {
    self.path = path
  }

  /// Allocations: network name to address to workload name.
  public typealias Table = [String: [String: String]]

  /// Gives `workload` an address in `subnet` on `network`: the one it already has, or the lowest
  /// free host address after the network address (the VTEP) and the gateway.
  public func allocate(workload: String, network: String, subnet: IPPrefix) throws -> IPv4Address {
    try self.locked { table in
      var used = table[network] ?? [:]
      if let mine = used.first(where: { $0.value == workload }), let a = IPv4Address(mine.key) { return a }
      guard case .v4(let base) = subnet.network.address else {
        throw IPAMError("network \(network): subnet \(subnet) is not IPv4")
      }
      let size = UInt32(1) << (32 - UInt32(subnet.length))
      for offset in 2..<(size - 1) {
        let candidate = IPv4Address(base.value + offset)
        if used[candidate.description] == nil {
          used[candidate.description] = workload
          table[network] = used
          return candidate
        }
      }
      throw IPAMError("network \(network): no free address left in \(subnet) for \(workload)")
    }
  }

  /// Releases whatever `workload` holds on `network`; releasing nothing is not an error.
  public func release(workload: String, network: String) throws {
    try self.locked { table in
      table[network] = (table[network] ?? [:]).filter { $0.value != workload }
    }
  }

  /// The current allocations.
  public func table() throws -> Table { try self.locked { $0 } }

  private func locked<T>(_ body: (inout Table) throws -> T) throws -> T {
    let dir = (self.path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let fd = open(self.path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw IPAMError("cannot open \(self.path).lock: errno \(errno)") }
    defer { close(fd) }
    guard flock(fd, LOCK_EX) == 0 else { throw IPAMError("cannot lock \(self.path): errno \(errno)") }
    var table: Table = [:]
    if let data = FileManager.default.contents(atPath: self.path), !data.isEmpty {
      table = try JSONDecoder().decode(Table.self, from: data)
    }
    let before = table
    let result = try body(&table)
    if table != before {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try encoder.encode(table).write(to: URL(fileURLWithPath: self.path), options: .atomic)
    }
    return result
  }
}

/// An address could not be given or kept.
public struct IPAMError: Error, Sendable, CustomStringConvertible {
  /// What went wrong.
  public var description: String
  init(_ description: String) { self.description = description }
}
