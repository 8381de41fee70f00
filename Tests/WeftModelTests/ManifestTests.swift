import Testing
import WeftManifest
import WeftModel

@Suite("manifests and validation")
struct ManifestTests {
  @Test func multiDocumentYAML() throws {
    let text = """
      apiVersion: weft/v1
      kind: Network
      metadata:
        name: blue
        labels: {team: a}
      spec:
        cidr: 100.96.0.0/16
        vni: 100
        mtu: auto
      ---
      apiVersion: weft/v1
      kind: Network
      metadata: {name: red}
      spec: {cidr: 100.97.0.0/16, hostPrefixLength: 26, mtu: 1400}
      """
    let rs = try Manifest.parse(text)
    #expect(rs.map(\.metadata.name) == ["blue", "red"])
    let blue = try rs[0].decodeSpec(NetworkSpec.self)
    #expect(blue.vni == 100)
    #expect(blue.mtu == .auto)
    #expect(rs[0].metadata.labels == ["team": "a"])
    let red = try rs[1].decodeSpec(NetworkSpec.self)
    #expect(red.mtu == .fixed(1400))
    #expect(red.effectiveHostPrefixLength == 26)
    // YAML out parses back to the same resources.
    #expect(try Manifest.parse(try Manifest.yaml(rs)) == rs)
  }

  @Test(arguments: [
    ("kind: [", "not valid YAML"),
    ("- a\n- b", "must be a mapping"),
    ("apiVersion: weft/v1\nkind: Gadget\nmetadata: {name: x}\nspec: {}", "unknown kind 'Gadget'"),
    ("apiVersion: weft/v1\nkind: Network\nmetadata: {name: x}", "missing field 'spec'"),
    ("apiVersion: weft/v2\nkind: Network\nmetadata: {name: x}\nspec: {cidr: 100.96.0.0/16}", "apiVersion"),
    (
      "apiVersion: weft/v1\nkind: Network\nmetadata: {name: X_1}\nspec: {cidr: 100.96.0.0/16}",
      "metadata.name"
    ),
    ("apiVersion: weft/v1\nkind: Network\nmetadata: {name: x}\nspec: {cidr: 100.96.0/16}", "spec.cidr"),
    ("apiVersion: weft/v1\nkind: Network\nmetadata: {name: x}\nspec: {cidr: 100.96.0.1/16}", "host bits set"),
    (
      "apiVersion: weft/v1\nkind: Network\nmetadata: {name: x}\nspec: {cidr: 100.96.0.0/16, vni: 16777216}",
      "spec.vni"
    ),
    ("apiVersion: weft/v1\nkind: Network\nmetadata: {name: x}\nspec: {cidr: 100.96.0.0/16, mtu: big}", "mtu"),
    (
      "apiVersion: weft/v1\nkind: Network\nmetadata: {name: x}\nspec: {cidr: 100.96.0.0/16, hostPrefixLength: 8}",
      "spec.hostPrefixLength"
    ),
    (
      "apiVersion: weft/v1\nkind: Network\nmetadata: {name: x}\nspec: {cidr: 100.96.0.0/16, cidrr: 1}",
      "spec.cidrr: unknown field"
    ),
    (
      "apiVersion: weft/v1\nkind: Workload\nmetadata: {name: w}\nspec: {network: x, host: h, mac: zz}",
      "spec.mac"
    ),
    ("", "no resources"),
  ])
  func badInputIsNamed(text: String, expected: String) {
    do {
      _ = try Manifest.parse(text)
      Issue.record("accepted: \(text)")
    } catch {
      #expect("\(error)".contains(expected), "\(error)")
    }
  }

  @Test func crossChecksOverlapVNIAndReferences() throws {
    let blue = try Resource(kind: .network, name: "blue", spec: NetworkSpec(cidr: "100.96.0.0/16", vni: 7))
    let inside = try Resource(kind: .network, name: "sub", spec: NetworkSpec(cidr: "100.96.128.0/17"))
    let overlap = #expect(throws: ValidationError.self) { try Validation.validate(inside, against: [blue]) }
    #expect(overlap?.field == "spec.cidr")
    #expect(overlap?.problem.contains("overlaps 100.96.0.0/16 of network blue") == true)
    let sameVNI = try Resource(kind: .network, name: "red", spec: NetworkSpec(cidr: "100.97.0.0/16", vni: 7))
    #expect(
      throws: ValidationError(
        resource: "Network/red", field: "spec.vni", problem: "VNI 7 is taken by network blue")
    ) {
      try Validation.validate(sameVNI, against: [blue])
    }
    // Updating a network against its own old version is fine.
    try Validation.validate(blue, against: [blue])
    let w = try Resource(kind: .workload, name: "w1", spec: WorkloadSpec(network: "green", host: "h1"))
    let unknown = #expect(throws: ValidationError.self) { try Validation.validate(w, against: [blue]) }
    #expect(unknown?.problem == "no network 'green'")
  }

  @Test func kindsAsUsersTypeThem() {
    #expect(ResourceKind(userInput: "networks") == .network)
    #expect(ResourceKind(userInput: "Host") == .host)
    #expect(ResourceKind(userInput: "wl") == .workload)
    #expect(ResourceKind(userInput: "pods") == nil)
  }
}
