import Foundation
import WeftModel
import Yams

/// Reads resources from YAML or JSON text: one or many documents separated by `---`.
public enum Manifest {
  /// A manifest that could not be read, naming the document and what was wrong.
  public struct Error: Swift.Error, Sendable, CustomStringConvertible {
    /// The 1-based document number within the file.
    public var document: Int
    /// What was wrong.
    public var problem: String
    /// `document N: problem`.
    public var description: String { "document \(self.document): \(self.problem)" }
  }

  /// Parses every document into a resource and validates each on its own. Empty documents are
  /// skipped. Nothing is returned unless every document is good.
  public static func parse(_ text: String) throws -> [Resource] {
    var documents: [Any?] = []
    do {
      let parser = try Parser(yaml: text)
      while let node = try parser.nextRoot() {
        documents.append(Constructor.default.any(from: node))
      }
    } catch {
      throw Error(document: documents.count + 1, problem: "not valid YAML: \(error)")
    }
    var out: [Resource] = []
    for (i, doc) in documents.enumerated() {
      guard let doc else { continue }
      guard let map = doc as? [String: Any] else {
        throw Error(document: i + 1, problem: "must be a mapping with apiVersion, kind, metadata and spec")
      }
      for field in ["apiVersion", "kind", "metadata", "spec"] where map[field] == nil {
        throw Error(document: i + 1, problem: "missing field '\(field)'")
      }
      if let kind = map["kind"] as? String, ResourceKind(rawValue: kind) == nil {
        let known = ResourceKind.allCases.map(\.rawValue).joined(separator: ", ")
        throw Error(document: i + 1, problem: "unknown kind '\(kind)'; known kinds: \(known)")
      }
      let resource: Resource
      do {
        let data = try JSONSerialization.data(withJSONObject: Self.jsonSafe(map))
        resource = try JSONDecoder().decode(Resource.self, from: data)
      } catch {
        throw Error(document: i + 1, problem: Validation.describe(error))
      }
      do {
        try Validation.validate(resource)
      } catch {
        throw Error(document: i + 1, problem: error.description)
      }
      out.append(resource)
    }
    if out.isEmpty { throw Error(document: 1, problem: "no resources in the input") }
    return out
  }

  /// YAML values JSONSerialization does not take (dates, bare keys of other types) as strings.
  private static func jsonSafe(_ v: Any) -> Any {
    switch v {
    case let m as [String: Any]: return m.mapValues { Self.jsonSafe($0) }
    case let m as [AnyHashable: Any]:
      return Dictionary(uniqueKeysWithValues: m.map { ("\($0.key)", Self.jsonSafe($0.value)) })
    case let a as [Any]: return a.map { Self.jsonSafe($0) }
    case is String, is Int, is Double, is Bool, is NSNull: return v
    case let d as Date: return ISO8601DateFormatter().string(from: d)
    default: return "\(v)"
    }
  }

  /// Renders any value as YAML with sorted keys.
  public static func yaml(value: some Encodable) throws -> String {
    let encoder = YAMLEncoder()
    encoder.options.sortKeys = true
    return try encoder.encode(value)
  }

  /// Renders resources as multi-document YAML.
  public static func yaml(_ resources: [Resource]) throws -> String {
    let encoder = YAMLEncoder()
    encoder.options.sortKeys = true
    return try resources.map { try encoder.encode($0) }.joined(separator: "---\n")
  }
}
