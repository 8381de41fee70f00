import WeftModel

/// Renders resources as an aligned text table, one row per resource.
enum ResourceTable {
  static func render(_ kind: ResourceKind, _ items: [Resource]) -> String {
    var rows: [[String]]
    switch kind {
    case .network:
      rows = [["NAME", "CIDR", "VNI", "HOST PREFIX", "MTU", "LEASES"]]
      for r in items {
        let s = try? r.decodeSpec(NetworkSpec.self)
        let st = (try? r.decodeStatus(NetworkStatus.self)) ?? nil
        rows.append([
          r.metadata.name, s?.cidr ?? "?", st.map { String($0.vni) } ?? "-",
          "/\(s?.effectiveHostPrefixLength ?? 0)", s?.mtu?.description ?? "auto",
          String(st?.leases.count ?? 0),
        ])
      }
    case .host:
      rows = [["NAME", "UNDERLAY", "DATAPATH", "PHASE", "SUBNETS"]]
      for r in items {
        let s = try? r.decodeSpec(HostSpec.self)
        let st = (try? r.decodeStatus(HostStatus.self)) ?? nil
        let subnets = (st?.networks ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.subnet)" }
        rows.append([
          r.metadata.name, s?.underlay ?? "?", s?.datapath ?? "kernel", st?.phase ?? "-",
          subnets.isEmpty ? "-" : subnets.joined(separator: ","),
        ])
      }
    case .workload:
      rows = [["NAME", "NETWORK", "HOST", "ADDRESS", "LABELS"]]
      for r in items {
        let s = try? r.decodeSpec(WorkloadSpec.self)
        let labels = (r.metadata.labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        rows.append([
          r.metadata.name, s?.network ?? "?", s?.host ?? "?", s?.address ?? "-",
          labels.isEmpty ? "-" : labels.joined(separator: ","),
        ])
      }
    }
    let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
    return rows.map { row in
      row.enumerated().map { i, cell in
        i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 2)
      }.joined()
    }.joined(separator: "\n") + "\n"
  }
}
