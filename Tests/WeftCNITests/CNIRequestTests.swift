import Foundation
import Testing
import WeftCNI

let goodConfig = Data(#"{"cniVersion":"1.0.0","name":"weftnet","type":"weft-cni","network":"blue"}"#.utf8)
let addEnv = [
  "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
]

@Suite("CNI requests and results (pure)")
struct CNIRequestTests {
  @Test func aGoodAddParses() throws {
    let r = try CNIRequest.parse(environment: addEnv, stdin: goodConfig)
    #expect(r.command == .add)
    #expect(r.config?.network == "blue")
    #expect(r.config?.agentSocket == nil)
  }

  @Test func versionNeedsNoConfiguration() throws {
    #expect(try CNIRequest.parse(environment: ["CNI_COMMAND": "VERSION"], stdin: Data()).command == .version)
  }

  @Test func olderAndNewerVersionsAndGCAttachments() throws {
    let v04 = Data(#"{"cniVersion":"0.4.0","name":"n","network":"blue"}"#.utf8)
    #expect(try CNIRequest.parse(environment: addEnv, stdin: v04).config?.cniVersion == "0.4.0")
    let gc = Data(
      #"{"cniVersion":"1.1.0","name":"n","network":"blue","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#
        .utf8)
    let r = try CNIRequest.parse(environment: ["CNI_COMMAND": "GC"], stdin: gc)
    #expect(r.config?.validAttachments?.first?.containerID == "c1")
  }

  @Test func badInvocationsAreSpecErrors() {
    let cases: [([String: String], Data, Int, String)] = [
      ([:], goodConfig, CNIError.invalidEnvironment, "CNI_COMMAND is not set"),
      (["CNI_COMMAND": "FROB"], goodConfig, CNIError.invalidEnvironment, "unknown CNI_COMMAND"),
      (addEnv, Data("{not json".utf8), CNIError.decodeFailure, "cannot decode"),
      (
        addEnv, Data(#"{"cniVersion":"0.2.0","name":"n","network":"blue"}"#.utf8),
        CNIError.incompatibleVersion, "0.2.0"
      ),
      (addEnv, Data(#"{"cniVersion":"1.0.0","name":"n"}"#.utf8), CNIError.invalidConfig, "no 'network'"),
      (
        ["CNI_COMMAND": "ADD", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0"], goodConfig,
        CNIError.invalidEnvironment,
        "CNI_CONTAINERID"
      ),
      (
        ["CNI_COMMAND": "CHECK", "CNI_CONTAINERID": "a", "CNI_IFNAME": "eth0"], goodConfig,
        CNIError.invalidEnvironment,
        "CNI_NETNS"
      ),
    ]
    for (env, stdin, code, message) in cases {
      do {
        _ = try CNIRequest.parse(environment: env, stdin: stdin)
        Issue.record("accepted: \(env)")
      } catch {
        #expect(error.code == code, "\(env)")
        #expect(error.description.contains(message), "\(error)")
      }
    }
  }

  @Test func workloadNamesAndJSONShapes() throws {
    #expect(CNIRequest.workloadName(containerID: "ABCDEF0123456789FFFF") == "c-abcdef0123456789")
    let error = CNIError(CNIError.tryAgainLater, "agent down", details: "socket missing")
    let e = try #require(
      try JSONSerialization.jsonObject(with: error.json(cniVersion: "1.0.0")) as? [String: Any])
    #expect(e["code"] as? Int == 11)
    #expect(e["msg"] as? String == "agent down")
    #expect(e["details"] as? String == "socket missing")
    #expect(e["cniVersion"] as? String == "1.0.0")
  }
}
