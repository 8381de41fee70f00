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
    case .service:
      rows = [["NAME", "NETWORK", "VIP", "PORTS", "SELECTOR", "BALANCER"]]
      for r in items {
        let s = try? r.decodeSpec(ServiceSpec.self)
        let st = (try? r.decodeStatus(ServiceStatus.self)) ?? nil
        let ports = (s?.ports ?? []).map { "\($0.port)/\($0.effectiveProtocol.rawValue)" }
        rows.append([
          r.metadata.name, s?.network ?? "?", st?.vip ?? "-", ports.joined(separator: ","),
          Self.labels(s?.selector), (s?.balancer?.policy ?? .roundRobin).rawValue,
        ])
      }
    case .route:
      rows = [["NAME", "SERVICE", "RULES"]]
      for r in items {
        let s = try? r.decodeSpec(RouteSpec.self)
        let rules = (s?.rules ?? []).enumerated().map { i, rule in
          let shares = rule.backends.map { "\(Self.labels($0.subset)):\($0.effectiveWeight)" }
          return (rule.name ?? "#\(i)") + "=" + shares.joined(separator: "/")
        }
        rows.append([r.metadata.name, s?.service ?? "?", rules.joined(separator: " ")])
      }
    case .accessPolicy:
      rows = [["NAME", "SCOPE", "ACTION", "RULES"]]
      for r in items {
        let s = try? r.decodeSpec(AccessPolicySpec.self)
        let scope = s?.service.map { "service \($0)" } ?? s?.namespace.map { "namespace \($0)" } ?? "mesh"
        let action = s?.action?.rawValue ?? "default \(s?.defaultAction?.rawValue ?? "?")"
        rows.append([r.metadata.name, scope, action, String(s?.rules?.count ?? 0)])
      }
    }
    return Self.align(rows)
  }

  /// The endpoints of a service, one row each.
  static func render(endpoints: [ServiceEndpoint]) -> String {
    var rows = [["WORKLOAD", "HOST", "ADDRESS", "HEALTHY", "LABELS"]]
    for e in endpoints {
      rows.append([e.workload, e.host, e.address, e.healthy ? "yes" : "no", Self.labels(e.labels)])
    }
    return Self.align(rows)
  }

  static func labels(_ labels: [String: String]?) -> String {
    let pairs = (labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    return pairs.isEmpty ? "-" : pairs.joined(separator: ",")
  }

  static func align(_ rows: [[String]]) -> String {
    let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
    return rows.map { row in
      row.enumerated().map { i, cell in
        i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 2)
      }.joined()
    }.joined(separator: "\n") + "\n"
  }
}
