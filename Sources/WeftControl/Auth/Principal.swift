import WeftModel

/// Who is calling the controller, once authenticated.
public enum Principal: Sendable, Hashable, CustomStringConvertible {
  /// An operator (an admin token, or a user certificate): may do everything.
  case admin(String)
  /// A host agent (its host certificate): reads everything, writes only its own Host and
  /// workloads.
  case host(String)
  /// A bootstrap token: may only get a host its first certificate.
  case bootstrap(TokenRecord)

  /// How logs and errors name it.
  public var description: String {
    switch self {
    case .admin(let name): "admin \(name)"
    case .host(let name): "host \(name)"
    case .bootstrap(let record): "bootstrap token \(record.id)"
    }
  }

  /// 403 unless an operator.
  public func requireAdmin(_ action: String) throws {
    guard case .admin = self else { throw Self.forbidden("\(self) may not \(action): operators only") }
  }

  /// 403 unless an operator or a host (reading the mesh).
  public func requireReader() throws {
    switch self {
    case .admin, .host: return
    case .bootstrap: throw Self.forbidden("\(self) may only bootstrap a host, not read or write")
    }
  }

  /// 403 unless an operator or host `name` itself.
  public func requireHost(_ name: String, _ action: String) throws {
    switch self {
    case .admin: return
    case .host(let own) where own == name: return
    default: throw Self.forbidden("\(self) may not \(action) of host \(name)")
    }
  }

  /// 403 unless the caller may create, change or delete `resource`, whose stored state (if
  /// any) is `existing`: operators anything but hosts (agents register those); a host only
  /// workloads placed on itself, before and after the change.
  public func requireWrite(_ resource: Resource, existing: Resource?) throws {
    switch self {
    case .admin: return
    case .bootstrap: throw Self.forbidden("\(self) may only bootstrap a host, not write \(resource.key)")
    case .host(let own):
      guard resource.kind == .workload else {
        throw Self.forbidden("host \(own) may write only its own workloads, not \(resource.key)")
      }
      for r in [resource, existing].compactMap({ $0 }) {
        let placed = (try? r.decodeSpec(WorkloadSpec.self))?.host
        guard placed == own else {
          throw Self.forbidden(
            "host \(own) may write only its own workloads; \(r.key) is on host \(placed ?? "(none)")")
        }
      }
    }
  }

  static func forbidden(_ message: String) -> ControlError {
    ControlError(status: 403, code: "forbidden", message: message)
  }
}
