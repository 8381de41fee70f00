import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import WeftModel
import WeftStore

/// The controller's HTTP API (JSON bodies, bearer-token auth):
///
/// | method and path | does |
/// |---|---|
/// | `GET /healthz` | liveness, no token needed |
/// | `GET /v1/{kinds}` | list: `{"revision": N, "items": [...]}` |
/// | `GET /v1/{kinds}/{name}` | one resource |
/// | `POST /v1/apply` | `{"items": [...]}`: validate all, then create or update each |
/// | `DELETE /v1/{kinds}/{name}` | delete |
/// | `GET /v1/watch?revision=N` | newline-delimited JSON events after revision N, then live; bookmarks keep it alive |
/// | `POST /v1/hosts/{name}/join` | an agent registers its host (body: HostSpec) and gets its leases |
/// | `POST /v1/hosts/{name}/heartbeat` | an agent reports it is alive |
/// | `POST /v1/identity/sign` | a certificate for a workload from its key's signing request |
/// | `GET /v1/identity/trust` | the trust domain and the trust bundle (PEM) |
public enum ControlServer {
  /// Builds the router over a controller; `token` is the bearer token every /v1 call must carry.
  public static func router(controller: Controller, token: String) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("/healthz") { _, _ in "ok\n" }
    let v1 = router.group("v1").add(middleware: TokenMiddleware(token: token))
    v1.get("watch") { request, context in
      let from = request.uri.queryParameters.get("revision", as: Int64.self) ?? 0
      let events: AsyncThrowingStream<StoreEvent, any Error>
      do {
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
        let body = try await request.body.collect(upTo: 8 << 20)
        let batch: ResourceList
        do {
          batch = try JSONDecoder().decode(ResourceList.self, from: Data(buffer: body))
        } catch {
          throw ControlError.invalid("request body is not a resource list: \(Validation.describe(error))")
        }
        return ResourceList(
          items: try await controller.apply(batch.items),
          revision: try await controller.store.currentRevision())
      }
    }
    v1.post("hosts/:name/join") { request, context in
      await Self.answer {
        let name = try context.parameters.require("name")
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
      await Self.answer { try await controller.heartbeat(host: try context.parameters.require("name")) }
    }
    v1.post("workloads/:name/health") { request, context in
      await Self.answer {
        let report = try await request.decode(as: HealthReport.self, context: context)
        return try await controller.setHealth(
          workload: try context.parameters.require("name"), service: report.service, healthy: report.healthy)
      }
    }
    v1.post("identity/sign") { request, context in
      await Self.answer {
        let signing: SigningRequest
        do { signing = try await request.decode(as: SigningRequest.self, context: context) } catch {
          throw ControlError.invalid("body is not {workload, csr}: \(Validation.describe(error))")
        }
        return try await controller.sign(signing)
      }
    }
    v1.get("identity/trust") { _, _ in await Self.answer { try await controller.trust() } }
    v1.get("services/:name/endpoints") { _, context in
      await Self.answer { try await controller.endpoints(of: try context.parameters.require("name")) }
    }
    for kind in ResourceKind.allCases {
      v1.get(RouterPath(kind.plural)) { _, _ in
        await Self.answer {
          let (items, revision) = try await controller.store.list(kind)
          return ResourceList(items: items, revision: revision)
        }
      }
      v1.get(RouterPath("\(kind.plural)/:name")) { _, context in
        await Self.answer {
          let key = ResourceKey(kind: kind, name: try context.parameters.require("name"))
          guard let r = try await controller.store.get(key) else {
            throw ControlError.notFound("\(key) not found")
          }
          return r
        }
      }
      v1.delete(RouterPath("\(kind.plural)/:name")) { _, context in
        await Self.answer {
          try await controller.delete(ResourceKey(kind: kind, name: try context.parameters.require("name")))
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

/// Rejects /v1 requests without the bearer token.
struct TokenMiddleware: RouterMiddleware {
  typealias Context = BasicRequestContext
  let token: String

  func handle(
    _ request: Request, context: Context, next: (Request, Context) async throws -> Response
  ) async throws -> Response {
    let header = request.headers[.authorization] ?? ""
    guard header == "Bearer \(self.token)" else {
      return ControlServer.errorResponse(
        ControlError(
          status: 401, code: "unauthorized",
          message: header.isEmpty
            ? "no token: pass --token or set WEFT_TOKEN" : "the token is not valid for this controller"))
    }
    return try await next(request, context)
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
