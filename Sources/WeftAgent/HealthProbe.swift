import AsyncHTTPClient
import NIOCore
import NIOPosix
import WeftModel
import WeftWire

/// One active health check of an endpoint: an HTTP GET whose answer must be 2xx, or a TCP
/// connect, within the check's timeout.
enum HealthProbe {
  static func check(address: String, port: Int, check: ServiceHealthCheck) async -> Bool {
    let timeout = check.timeout
    if let path = check.path {
      let request = HTTPClientRequest(url: "http://\(address):\(port)\(path)")
      do {
        let response = try await HTTPClient.shared.execute(
          request,
          timeout: .nanoseconds(timeout.totalNanoseconds))
        _ = try? await response.body.collect(upTo: 1 << 16)
        return (200..<300).contains(response.status.code)
      } catch {
        return false
      }
    }
    do {
      let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connectTimeout(.nanoseconds(timeout.totalNanoseconds))
        .connect(host: address, port: port).get()
      try? await channel.close()
      return true
    } catch {
      return false
    }
  }
}
