import Foundation
import WeftControl

#if canImport(Glibc)
  import Glibc
#endif

/// The plugin's client for the agent's local API: one blocking HTTP/1.1 request per call over
/// the agent's unix socket. A CNI plugin is a process per call; a blocking socket spares it the
/// event-loop threads and connection pool an async HTTP client sets up for one request.
struct AgentClient {
  /// The agent's socket path.
  let socket: String
  /// Seconds to wait for the connection, and for the answer.
  var connectTimeout = 2
  var answerTimeout = 30

  /// Sends `method target` with `body` as JSON; decodes the answer, or throws the agent's error
  /// as a CNI error.
  func call<T: Decodable, B: Encodable>(_ method: String, _ target: String, body: B?) throws -> T {
    let payload = try body.map { try JSONEncoder().encode($0) } ?? Data()
    let status: Int
    let answer: Data
    do {
      (status, answer) = try self.exchange(method: method, target: target, body: payload)
    } catch {
      throw CNIError(
        CNIError.tryAgainLater, "cannot reach the Weft agent at \(self.socket)",
        details: "is weft agent running on this host? (\(error))")
    }
    guard status == 200 else {
      let e = (try? JSONDecoder().decode(ErrorBody.self, from: answer))?.error
      let code: Int
      switch e?.status ?? status {
      case 404: code = CNIError.unknownContainer
      case 400: code = CNIError.invalidConfig
      case 503: code = CNIError.tryAgainLater
      default: code = CNIError.ioFailure
      }
      throw CNIError(code, e?.message ?? "the agent answered HTTP \(status)")
    }
    return try JSONDecoder().decode(T.self, from: answer)
  }

  /// What went wrong talking to the socket.
  struct TransportError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, errno e: Int32 = errno) {
      self.description = "\(what): \(String(cString: strerror(e)))"
    }
  }

  /// One request and its answer: (status code, body).
  func exchange(method: String, target: String, body: Data) throws -> (Int, Data) {
    guard FileManager.default.fileExists(atPath: self.socket) else {
      throw TransportError("no socket", errno: ENOENT)
    }
    let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TransportError("socket") }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(self.socket.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      throw TransportError("socket path too long", errno: ENAMETOOLONG)
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    Self.setTimeout(fd, SO_SNDTIMEO, seconds: self.connectTimeout)
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard connected == 0 else { throw TransportError("connect") }
    Self.setTimeout(fd, SO_RCVTIMEO, seconds: self.answerTimeout)
    let head =
      "\(method) \(target) HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n"
      + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
    try Self.writeAll(fd, Data(head.utf8) + body)
    return try Self.parse(try Self.readAll(fd))
  }

  static func setTimeout(_ fd: Int32, _ option: Int32, seconds: Int) {
    var t = timeval(tv_sec: seconds, tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, option, &t, socklen_t(MemoryLayout<timeval>.size))
  }

  static func writeAll(_ fd: Int32, _ data: Data) throws {
    try data.withUnsafeBytes { raw in
      var sent = 0
      while sent < raw.count {
        let n = write(fd, raw.baseAddress! + sent, raw.count - sent)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw TransportError("send") }
        sent += n
      }
    }
  }

  static func readAll(_ fd: Int32) throws -> [UInt8] {
    var all: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16_384)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n >= 0 else { throw TransportError(errno == EAGAIN ? "no answer in time" : "receive") }
      if n == 0 { return all }
      all += chunk[..<n]
      guard all.count <= 1 << 20 else { throw TransportError("answer over 1 MiB", errno: EMSGSIZE) }
    }
  }

  /// Splits an HTTP/1.1 answer into status and body (Content-Length, chunked, or to the end).
  static func parse(_ answer: [UInt8]) throws -> (Int, Data) {
    let separator: [UInt8] = [13, 10, 13, 10]
    guard let end = answer.indices.first(where: { answer[$0...].starts(with: separator) }) else {
      throw TransportError("malformed answer", errno: EPROTO)
    }
    let lines = String(decoding: answer[..<end], as: UTF8.self).split(separator: "\r\n")
    let statusLine = lines.first?.split(separator: " ") ?? []
    guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
      throw TransportError("malformed status line", errno: EPROTO)
    }
    let chunked = lines.dropFirst().contains {
      $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked")
    }
    var body = Array(answer[(end + 4)...])
    if chunked {
      var decoded: [UInt8] = []
      var i = 0
      while let lineEnd = body[i...].firstIndex(of: 13),
        let size = Int(
          String(decoding: body[i..<lineEnd], as: UTF8.self).split(separator: ";")[0].trimmingCharacters(
            in: .whitespaces), radix: 16)
      {
        let start = lineEnd + 2
        guard size > 0, start + size <= body.count else { break }
        decoded += body[start..<(start + size)]
        i = start + size + 2
        guard i < body.count else { break }
      }
      body = decoded
    }
    return (status, Data(body))
  }
}
