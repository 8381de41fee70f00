/// What a connection speaks, judged from the first bytes its client sends.
public enum DetectedProtocol: Sendable, Hashable {
  /// An HTTP/1.x request line (a known method followed by a space).
  case http1
  /// The HTTP/2 connection preface (prior knowledge; gRPC included).
  case http2
  /// A TLS handshake record (passed through; the mesh hop's own TLS is the security issue's).
  case tls
  /// Anything else: proxied as opaque TCP.
  case opaque
}

/// Sans-IO protocol detection for the sidecar's listeners: feed it the bytes received so far; it
/// answers as soon as they decide, or asks for more. A client that sends nothing (a server-first
/// protocol such as SMTP or MySQL) never decides: the caller gives up after its detection timeout
/// and treats the connection as ``DetectedProtocol/opaque``, as Istio and Linkerd do.
public enum ProtocolDetector {
  /// The outcome for the bytes seen so far.
  public enum Verdict: Sendable, Hashable {
    /// Decided.
    case detected(DetectedProtocol)
    /// The bytes so far are the start of more than one answer: read more.
    case needMoreBytes
  }

  /// The HTTP/2 client connection preface (RFC 9113 §3.4).
  public static let http2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
  /// The request methods recognised as HTTP/1, each with its trailing space.
  static let methods: [[UInt8]] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
  ]
  .map { Array(($0 + " ").utf8) }
  /// Bytes after which a decision is always possible.
  public static let maximumPrefix = http2Preface.count

  /// Judges the first bytes of a connection.
  public static func detect(_ bytes: some Collection<UInt8>) -> Verdict {
    let head = Array(bytes.prefix(maximumPrefix))
    guard !head.isEmpty else { return .needMoreBytes }
    if Self.starts(head, with: http2Preface) {
      return head.count >= http2Preface.count ? .detected(.http2) : .needMoreBytes
    }
    if head[0] == 0x16 {
      // TLS record: content type handshake, version major 3, minor 0...4 (SSL 3.0 to TLS 1.3).
      guard head.count >= 3 else {
        return head.count == 2 && head[1] != 0x03 ? .detected(.opaque) : .needMoreBytes
      }
      return head[1] == 0x03 && head[2] <= 0x04 ? .detected(.tls) : .detected(.opaque)
    }
    var couldBeMethod = false
    for method in methods where Self.starts(head, with: method) || Self.starts(method, with: head) {
      if head.count >= method.count { return .detected(.http1) }
      couldBeMethod = true
    }
    return couldBeMethod ? .needMoreBytes : .detected(.opaque)
  }

  /// True when `a` begins with `b` over their common length.
  private static func starts(_ a: [UInt8], with b: [UInt8]) -> Bool {
    let n = min(a.count, b.count)
    return a[..<n] == b[..<n]
  }
}
