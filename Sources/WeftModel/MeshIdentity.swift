/// Who a meshed workload is, in the parts of its SPIFFE identity
/// (`spiffe://<trust domain>/ns/<namespace>/sa/<account>`): the namespace is its `namespace`
/// label or else its network; the account its `serviceAccount` label, else the first service
/// (by name) that selects it, else its own name. A workload labelled `weft/mesh: "true"` has a
/// sidecar, so callers' sidecars speak mutual TLS to it.
public enum MeshIdentity {
  /// The label marking a workload that has a sidecar.
  public static let meshLabel = "weft/mesh"
  /// The label that sets the namespace.
  public static let namespaceLabel = "namespace"
  /// The label that sets the service account.
  public static let accountLabel = "serviceAccount"

  /// The namespace and account of `workload` among `services` (nil when its spec is unreadable).
  public static func names(of workload: Resource, services: [Resource]) -> (
    namespace: String, account: String
  )? {
    guard let spec = try? workload.decodeSpec(WorkloadSpec.self) else { return nil }
    let labels = workload.metadata.labels ?? [:]
    let serving = services.filter { service in
      guard let s = try? service.decodeSpec(ServiceSpec.self) else { return false }
      return s.network == spec.network && s.selects(labels)
    }.map(\.metadata.name).sorted()
    return (
      labels[Self.namespaceLabel] ?? spec.network,
      labels[Self.accountLabel] ?? serving.first ?? workload.metadata.name
    )
  }

  /// The identity's URI.
  public static func uri(trustDomain: String, namespace: String, account: String) -> String {
    "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(account)"
  }

  /// True when the workload has a sidecar.
  public static func isMeshed(_ labels: [String: String]?) -> Bool { labels?[Self.meshLabel] == "true" }
}

/// How a service's endpoints take connections from outside the mesh: `permissive` accepts
/// plaintext beside mutual TLS (and counts it), `strict` refuses it.
public enum MTLSMode: String, Codable, Sendable, Hashable, CaseIterable {
  /// Mutual TLS from sidecars, plaintext from anyone else.
  case permissive
  /// Mutual TLS only.
  case strict
}
