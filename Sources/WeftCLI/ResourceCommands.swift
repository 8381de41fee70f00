import ArgumentParser
import Foundation
import WeftClient
import WeftControl
import WeftManifest
import WeftModel

/// `weft apply -f FILE`.
struct ApplyCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "apply",
    abstract: "Create or update the resources in a YAML file (several documents allowed).")

  @Option(name: .shortAndLong, help: "The file to apply ('-' for standard input).")
  var file: String

  @OptionGroup var client: ClientOptions

  func run() async throws {
    let text: String
    if file == "-" {
      text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    } else {
      guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
      text = String(decoding: data, as: UTF8.self)
    }
    do {
      let resources = try Manifest.parse(text)
      let applied = try await client.client().apply(resources)
      for r in applied.items {
        print(
          "\(r.kind.rawValue.lowercased())/\(r.metadata.name) applied (revision \(r.metadata.revision ?? 0))")
      }
    } catch let e as Manifest.Error {
      throw fail("\(file): \(e)")
    } catch let e as ControlError {
      throw fail(e.message)
    }
  }
}

/// `weft get KIND [NAME] [-o yaml|json]`.
struct GetCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "get", abstract: "Show resources.")

  enum Format: String, ExpressibleByArgument { case table, yaml, json }

  @Argument(help: "networks, hosts, workloads, services, or endpoints (with a service's name).")
  var kind: String

  @Argument(help: "One resource's name.")
  var name: String?

  @Option(name: .shortAndLong, help: "table, yaml or json.")
  var output: Format = .table

  @OptionGroup var client: ClientOptions

  func run() async throws {
    if ["endpoints", "endpoint", "ep"].contains(self.kind.lowercased()) { return try await self.endpoints() }
    guard let kind = ResourceKind(userInput: kind) else {
      throw fail("unknown kind '\(self.kind)'; use networks, hosts, workloads, services or endpoints")
    }
    var items: [Resource]
    do {
      if let name {
        guard let r = try await client.client().get(ResourceKey(kind: kind, name: name)) else {
          throw fail("\(kind.rawValue.lowercased())/\(name) not found")
        }
        items = [r]
      } else {
        items = try await client.client().list(kind).items
      }
    } catch let e as ControlError {
      throw fail(e.message)
    }
    switch output {
    case .yaml: print(try Manifest.yaml(items), terminator: "")
    case .json:
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      let value: any Encodable = name == nil ? ResourceList(items: items) : items[0]
      print(String(decoding: try encoder.encode(value), as: UTF8.self))
    case .table: print(ResourceTable.render(kind, items), terminator: "")
    }
  }

  /// `weft get endpoints SERVICE`: the workloads behind a service.
  private func endpoints() async throws {
    guard let name else { throw fail("weft get endpoints needs a service's name") }
    let endpoints: [ServiceEndpoint]
    do {
      endpoints = try await client.client().endpoints(of: name)
    } catch let e as ControlError {
      throw fail(e.message)
    }
    switch output {
    case .yaml: print(try Manifest.yaml(value: endpoints), terminator: "")
    case .json:
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      print(String(decoding: try encoder.encode(endpoints), as: UTF8.self))
    case .table: print(ResourceTable.render(endpoints: endpoints), terminator: "")
    }
  }
}

/// `weft delete KIND NAME`.
struct DeleteCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a resource.")

  @Argument(help: "networks, hosts or workloads.")
  var kind: String

  @Argument(help: "The resource's name.")
  var name: String

  @OptionGroup var client: ClientOptions

  func run() async throws {
    guard let kind = ResourceKind(userInput: kind) else {
      throw fail("unknown kind '\(self.kind)'; use networks, hosts, workloads or services")
    }
    do {
      try await client.client().delete(ResourceKey(kind: kind, name: name))
      print("\(kind.rawValue.lowercased())/\(name) deleted")
    } catch let e as ControlError {
      throw fail(e.message)
    }
  }
}
