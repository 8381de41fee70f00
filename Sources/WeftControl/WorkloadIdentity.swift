import WeftIdentity
import WeftModel

/// The identity the CA gives a workload: `spiffe://<trust domain>/ns/<namespace>/sa/<account>`,
/// where the namespace is the workload's `namespace` label or else its network, and the account
/// its `serviceAccount` label, else the first service (by name) that selects it, else its own
/// name.
public enum WorkloadIdentity {
  /// The label that sets the namespace.
  public static let namespaceLabel = "namespace"
  /// The label that sets the service account.
  public static let accountLabel = "serviceAccount"

  /// The identity of `workload` among `services`, or a reason it has none (a label with
  /// characters SPIFFE does not allow).
  public static func of(_ workload: Resource, services: [Resource], trustDomain: String) throws(ControlError)
    -> SPIFFEID
  {
    let labels = workload.metadata.labels ?? [:]
    let spec: WorkloadSpec
    do { spec = try workload.decodeSpec(WorkloadSpec.self) } catch {
      throw ControlError.invalid("\(workload.key): spec unreadable: \(error)")
    }
    let serving = services.filter { service in
      guard let s = try? service.decodeSpec(ServiceSpec.self) else { return false }
      return s.network == spec.network && s.selects(labels)
    }.map(\.metadata.name).sorted()
    let namespace = labels[Self.namespaceLabel] ?? spec.network
    let account = labels[Self.accountLabel] ?? serving.first ?? workload.metadata.name
    guard let id = SPIFFEID(trustDomain: trustDomain, namespace: namespace, serviceAccount: account) else {
      throw ControlError.invalid(
        "\(workload.key): namespace '\(namespace)' or account '\(account)' has characters a SPIFFE ID cannot hold"
      )
    }
    return id
  }
}
