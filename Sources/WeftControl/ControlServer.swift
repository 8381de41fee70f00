import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import WeftModel
import WeftStore

/// The controller's HTTP API (JSON bodies). Every /v1 call is authenticated (``AuthMiddleware``:
/// a client certificate of a host or operator, or a bearer token) and authorized (``Principal``):
///
/// | method and path | does | who |
/// |---|---|---|
/// | `GET /healthz` | liveness | anyone |
/// | `GET /v1/{kinds}`, `GET /v1/{kinds}/{name}` | list: `{"revision": N, "items": [...]}`, or one | operators, hosts |
/// | `POST /v1/apply` | `{"items": [...]}`: validate all, then create or update each | operators; a host its own workloads |
/// | `DELETE /v1/{kinds}/{name}` | delete | operators; a host its own workloads |
/// | `GET /v1/watch?revision=N` | newline-delimited JSON events after revision N, then live | operators, hosts |
/// | `POST /v1/hosts/{name}/join`, `.../heartbeat` | an agent registers its host, reports it alive | operators, that host |
/// | `POST /v1/workloads/{name}/health` | a health finding | operators, the workload's host |
/// | `POST /v1/identity/sign` | a workload certificate from its key's signing request | operators, the workload's host |
/// | `GET /v1/identity/trust` | the mesh's trust domain and bundle (PEM) | operators, hosts |
/// | `GET /v1/identity/ca` | the mesh CA's signer, roots and when old roots may go | operators, hosts |
/// | `POST /v1/identity/rotate` | a new mesh CA root (trusted now, signing after propagation) | operators |
/// | `POST /v1/identity/retire[?force=true]` | drops every root but the signer's | operators |
/// | `POST /v1/hosts/{name}/bootstrap` | a host's first client certificate | a bootstrap token (for that host) |
/// | `POST /v1/hosts/{name}/certificate` | a renewed host certificate | that host, operators |
/// | `POST /v1/{hosts,users}/{name}/revoke` | revoke every certificate of a host or user | operators |
/// | `POST /v1/users/{name}/certificate` | an operator's client certificate | operators |
/// | `POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/{id}` | bearer tokens | operators |
public enum ControlServer {
  /// Builds the router over a controller with one operator token and no certificates (tests).
  public static func router(controller: Controller, token: String) -> Router<ControlRequestContext> {
    self.router(controller: controller, auth: .token(token))
  }

  /// Builds the router over a controller and its authentication state.
  public static func router(controller: Controller, auth: ControlAuth) -> Router<ControlRequestContext> {
    let router = Router(context: ControlRequestContext.self)
    router.get("/healthz") { _, _ in "ok\n" }
    let v1 = router.group("v1").add(middleware: AuthMiddleware(auth: auth))
    v1.get("watch") { request, context in
      let from = request.uri.queryParameters.get("revision", as: Int64.self) ?? 0
      let events: AsyncThrowingStream<StoreEvent, any Error>
      do {
        try context.caller().requireReader()
        events = try await controller.store.watch(after: from)
      } catch {
        return Self.errorResponse(ControlError(error))
      }
      let store = controller.store
      let body = ResponseBody { writer in
        try await withThrowingTaskGroup(of: Void.self) { group in
          let (lines, sink) = AsyncStream<ByteBuffer>.makeStream()
          group.addTask {
            // A watch lasts until the client leaves or the server shuts down, never longer.
            try? await cancelWhenGracefulShutdown {
              for try await event in events { sink.yield(Self.line(WatchMessage(event: event))) }
            }
            sink.finish()
          }
          group.addTask {
            while !Task.isCancelled {
              try await Task.sleep(for: .seconds(10))
              sink.yield(Self.line(WatchMessage(bookmark: try await store.currentRevision())))
            }
          }
          for await line in lines { try await writer.write(line) }
          group.cancelAll()
        }
        try await writer.finish(nil)
      }
      return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
    }
    v1.post("apply") { request, context in
      await Self.answer {
        let caller = try context.caller()
        let body = try await request.body.collect(upTo: 8 << 20)
        let batch: ResourceList
        do {
          batch = try JSONDecoder().decode(ResourceList.self, from: Data(buffer: body))
        } catch {
          throw ControlError.invalid("request body is not a resource list: \(Validation.describe(error))")
        }
        return ResourceList(
          items: try await controller.apply(batch.items, as: caller),
          revision: try await controller.store.currentRevision())
      }
    }
    v1.post("hosts/:name/join") { request, context in
      await Self.answer {
        let name = try context.parameters.require("name")
        try context.caller().requireHost(name, "register")
        let body = try await request.body.collect(upTo: 1 << 20)
        let spec: HostSpec
        do {
          spec = try JSONDecoder().decode(HostSpec.self, from: Data(buffer: body))
        } catch {
          throw ControlError.invalid("Host/\(name): body is not a host spec: \(Validation.describe(error))")
        }
        return try await controller.join(host: name, spec: spec)
      }
    }
    v1.post("hosts/:name/heartbeat") { _, context in
      await Self.answer {
        let name = try context.parameters.require("name")
        try context.caller().requireHost(name, "report the heartbeat")
        return try await controller.heartbeat(host: name)
      }
    }
    v1.post("workloads/:name/health") { request, context in
      await Self.answer {
        let report = try await request.decode(as: HealthReport.self, context: context)
        return try await controller.setHealth(
          workload: try context.parameters.require("name"), service: report.service, healthy: report.healthy,
          as: try context.caller())
      }
    }
    v1.post("identity/sign") { request, context in
      await Self.answer {
        let caller = try context.caller()
        let signing: SigningRequest
        do { signing = try await request.decode(as: SigningRequest.self, context: context) } catch {
          throw ControlError.invalid("body is not {workload, csr}: \(Validation.describe(error))")
        }
        return try await controller.sign(signing, as: caller)
      }
    }
    v1.get("identity/trust") { _, context in
      await Self.answer {
        try context.caller().requireReader()
        return try await controller.trust()
      }
    }
    v1.get("identity/ca") { _, context in
      await Self.answer {
        try context.caller().requireReader()
        return try await controller.caStatus()
      }
    }
    v1.post("identity/rotate") { _, context in
      await Self.answer { try await controller.rotateCA(as: try context.caller()) }
    }
    v1.post("identity/retire") { request, context in
      await Self.answer {
        let force = request.uri.queryParameters.get("force") == "true"
        return try await controller.retireCA(as: try context.caller(), force: force)
      }
    }
    v1.get("services/:name/endpoints") { _, context in
      await Self.answer {
        try context.caller().requireReader()
        return try await controller.endpoints(of: try context.parameters.require("name"))
      }
    }
    Self.addCredentialRoutes(to: v1, auth: auth)
    for kind in ResourceKind.allCases {
      v1.get(RouterPath(kind.plural)) { _, context in
        await Self.answer {
          try context.caller().requireReader()
          let (items, revision) = try await controller.store.list(kind)
          return ResourceList(items: items, revision: revision)
        }
      }
      v1.get(RouterPath("\(kind.plural)/:name")) { _, context in
        await Self.answer {
          try context.caller().requireReader()
          let key = ResourceKey(kind: kind, name: try context.parameters.require("name"))
          guard let r = try await controller.store.get(key) else {
            throw ControlError.notFound("\(key) not found")
          }
          return r
        }
      }
      v1.delete(RouterPath("\(kind.plural)/:name")) { _, context in
        await Self.answer {
          let name = try context.parameters.require("name")
          let gone = try await controller.delete(
            ResourceKey(kind: kind, name: name), as: try context.caller())
          // A host taken out of the mesh loses its certificates with it.
          if kind == .host { _ = try await auth.registry.revoke(.host(name)) }
          return gone
        }
      }
    }
    return router
  }

  /// Runs a handler and renders its value, or its error, as JSON.
  public static func answer<T: Encodable>(_ body: () async throws -> T) async -> Response {
    do {
      let value = try await body()
      return Response(
        status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: Self.json(value)))
    } catch {
      return Self.errorResponse(ControlError(error))
    }
  }

  static func errorResponse(_ e: ControlError) -> Response {
    Response(
      status: .init(code: e.status), headers: [.contentType: "application/json"],
      body: .init(byteBuffer: Self.json(ErrorBody(error: e))))
  }

  static func json<T: Encodable>(_ value: T) -> ByteBuffer {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return ByteBuffer(data: (try? encoder.encode(value)) ?? Data("{}".utf8))
  }

  static func line<T: Encodable>(_ value: T) -> ByteBuffer {
    var b = Self.json(value)
    b.writeString("\n")
    return b
  }
}

/// The JSON error body: `{"error": {"status", "code", "message"}}`.
public struct ErrorBody: Codable, Sendable {
  /// The error.
  public var error: ControlError
}

/// A list of resources with the store revision it reflects.
public struct ResourceList: Codable, Sendable {
  /// The resources.
  public var items: [Resource]
  /// The store revision.
  public var revision: Int64?

  /// Creates a list.
  public init(items: [Resource], revision: Int64? = nil) {
    self.items = items
    self.revision = revision
  }
}

/// One line of a watch stream: an event, or a bookmark carrying the current revision.
public struct WatchMessage: Codable, Sendable {
  /// `put`, `delete` or `bookmark`.
  public var type: String
  /// The revision of the event, or the store's for a bookmark.
  public var revision: Int64
  /// The resource, for events.
  public var resource: Resource?

  /// An event line.
  public init(event: StoreEvent) {
    self.type = event.type.rawValue
    self.revision = event.revision
    self.resource = event.resource
  }

  /// A bookmark line.
  public init(bookmark revision: Int64) {
    self.type = "bookmark"
    self.revision = revision
    self.resource = nil
  }
}

/// An agent's health finding for one workload and service.
public struct HealthReport: Codable, Sendable {
  /// The service whose check it was.
  public var service: String
  /// The outcome.
  public var healthy: Bool

  /// Creates a report.
  public init(service: String, healthy: Bool) {
    self.service = service
    self.healthy = healthy
  }
}
