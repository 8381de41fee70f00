import WeftIdentity
import WeftModel

/// The identity the CA gives a workload: `spiffe://<trust domain>/ns/<namespace>/sa/<account>`
/// with the parts ``MeshIdentity`` decides.
public enum WorkloadIdentity {
  /// The identity of `workload` among `services`, or a reason it has none (a label with
  /// characters SPIFFE does not allow).
  public static func of(_ workload: Resource, services: [Resource], trustDomain: String) throws(ControlError)
    -> SPIFFEID
  {
    guard let (namespace, account) = MeshIdentity.names(of: workload, services: services) else {
      throw ControlError.invalid("\(workload.key): spec unreadable")
    }
    guard let id = SPIFFEID(trustDomain: trustDomain, namespace: namespace, serviceAccount: account) else {
      throw ControlError.invalid(
        "\(workload.key): namespace '\(namespace)' or account '\(account)' has characters a SPIFFE ID cannot hold"
      )
    }
    return id
  }
}
