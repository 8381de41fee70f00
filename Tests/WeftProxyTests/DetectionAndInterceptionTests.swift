import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import WeftProxy

@Suite("sidecar: protocol detection and interception rules")
struct DetectionAndInterceptionTests {
  func verdict(_ text: String) -> ProtocolDetector.Verdict { ProtocolDetector.detect(Array(text.utf8)) }

  @Test func firstBytesDecideTheProtocol() {
    #expect(verdict("GET / HTTP/1.1\r\n") == .detected(.http1))
    #expect(verdict("POST ") == .detected(.http1))
    #expect(verdict("OPTIONS * HTTP/1.1") == .detected(.http1))
    #expect(ProtocolDetector.detect(ProtocolDetector.http2Preface + [0, 0, 0]) == .detected(.http2))
    #expect(ProtocolDetector.detect([0x16, 0x03, 0x01, 0x02, 0x00]) == .detected(.tls))
    #expect(ProtocolDetector.detect([0x16, 0x03, 0x09]) == .detected(.opaque))
    #expect(verdict("SSH-2.0-OpenSSH_9.2") == .detected(.opaque))
    #expect(verdict("get / HTTP/1.1") == .detected(.opaque), "methods are case-sensitive")
    #expect(verdict("GETX") == .detected(.opaque))
  }

  @Test func ambiguousPrefixesWaitForMoreBytes() {
    for prefix in ["", "G", "GE", "GET", "P", "PO", "PU", "PR", "PRI * HTTP/2.0\r\n", "DELET", "C"] {
      #expect(verdict(prefix) == .needMoreBytes, "'\(prefix)'")
    }
    #expect(ProtocolDetector.detect([0x16]) == .needMoreBytes)
    #expect(ProtocolDetector.detect([0x16, 0x03]) == .needMoreBytes)
    #expect(ProtocolDetector.detect([0x16, 0x01]) == .detected(.opaque))
    // "PRI " is HTTP/2's preface, not an HTTP/1 method: a different continuation is opaque.
    #expect(verdict("PRI * HTTP/1.1\r\n") == .detected(.opaque))
  }

  @Test func everyPrefixOfEveryInputEitherWaitsOrAgreesWithTheWhole() {
    let inputs =
      ["GET /x HTTP/1.1\r\n", "PATCH /y HTTP/1.1", "hello world, opaque"]
      .map { Array($0.utf8) } + [ProtocolDetector.http2Preface, [0x16, 0x03, 0x03, 0x00, 0x10]]
    for input in inputs {
      let whole = ProtocolDetector.detect(input)
      #expect(whole != .needMoreBytes)
      for n in 0...input.count {
        let v = ProtocolDetector.detect(input.prefix(n))
        #expect(v == .needMoreBytes || v == whole, "\(input.prefix(n)) -> \(v), whole \(whole)")
      }
    }
  }

  /// A client that sends a few bytes and its FIN before the verdict: opaque, and whoever takes
  /// the connection on is told the input is closed (the event itself is gone by then).
  @Test func aFINBeforeTheVerdictIsReportedWithTheBytes() throws {
    var verdict: (DetectedProtocol, String, Bool)?
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(
      ProtocolSniffer(timeout: .seconds(5)) { found, bytes, inputClosed in
        verdict = (found, String(buffer: bytes), inputClosed)
      })
    try channel.writeInbound(ByteBuffer(string: "GE"))
    #expect(verdict == nil, "GE could still be HTTP")
    channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    let got = try #require(verdict)
    #expect(got.0 == .opaque && got.1 == "GE" && got.2)
    _ = try? channel.finish()
  }

  @Test func rulesRedirectTCPButNotTheProxyLoopbackOrExcludedPorts() throws {
    let rules = InterceptionRules(excludedOutboundPorts: [5432, 22], excludedInboundPorts: [9090])
    #expect(rules.problem == nil)
    let script = rules.script
    #expect(script.contains("meta mark 0x57460001 return"))
    #expect(script.contains("tcp dport { 22, 5432 } return"))
    #expect(script.contains("tcp dport { 9090, 15000, 15001, 15006 } return"))
    #expect(script.contains("meta l4proto tcp redirect to :15001"))
    #expect(script.contains("meta l4proto tcp redirect to :15006"))
    #expect(
      InterceptionRules(excludedOutboundPorts: [70000]).problem == "port 70000 is out of range (1-65535)")
    var clash = InterceptionRules()
    clash.inboundPort = clash.outboundPort
    #expect(clash.problem == "the outbound, inbound and admin ports must differ")
  }

  /// The kernel accepts the script, twice in a row (idempotent), in a throwaway namespace.
  @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")))
  func theKernelAcceptsTheRulesAndReapplyingKeepsOneTable() throws {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
      "weft-mesh-rules-\(getpid()).nft")
    try InterceptionRules(excludedOutboundPorts: [22]).script.write(
      to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    process.arguments = [
      "--net", "sh", "-c", "nft -f \(file.path) && nft -f \(file.path) && nft list ruleset",
    ]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = out
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(text)")
    #expect(text.components(separatedBy: "table ip weft_mesh").count == 2, "one table: \(text)")
    #expect(text.contains("redirect to :15001") && text.contains("redirect to :15006"))
  }
}

@Suite("sidecar: request checks against smuggling")
struct HTTPRequestCheckTests {
  func head(_ headers: [(String, String)]) -> HTTPRequestHead {
    HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: HTTPHeaders(headers))
  }

  @Test func ambiguousFramingIsRefused() {
    #expect(HTTPRequestCheck.problem(head([("content-length", "5")])) == nil)
    #expect(HTTPRequestCheck.problem(head([("transfer-encoding", "chunked")])) == nil)
    #expect(HTTPRequestCheck.problem(head([("content-length", "5"), ("content-length", "5")])) == nil)
    #expect(
      HTTPRequestCheck.problem(head([("content-length", "5"), ("transfer-encoding", "chunked")]))
        == "both Content-Length and Transfer-Encoding")
    #expect(
      HTTPRequestCheck.problem(head([("content-length", "5"), ("content-length", "6")]))
        == "conflicting Content-Length values")
    #expect(
      HTTPRequestCheck.problem(head([("content-length", "5, 6")])) == "conflicting Content-Length values")
    #expect(
      HTTPRequestCheck.problem(head([("content-length", "-1")])) == "Content-Length '-1' is not a number")
    #expect(
      HTTPRequestCheck.problem(head([("transfer-encoding", "chunked, gzip")]))
        == "Transfer-Encoding must end with chunked")
  }
}
