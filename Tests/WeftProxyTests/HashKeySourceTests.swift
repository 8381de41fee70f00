import Foundation
import Testing
import WeftModel

@testable import WeftProxy

@Suite struct HashKeySourceTests {
  private let client = EndpointAddress(100, 96, 0, 9, port: 41_000)

  private func context(_ source: HashKeySource, _ headers: [String: String]) -> PickContext {
    source.pickContext(header: { headers[$0] }, sourceAddress: self.client)
  }

  @Test func headerNameIsLowercasedForLookup() {
    let context = self.context(.header("X-User"), ["x-user": "alice"])
    #expect(context == PickContext(hashKey: "alice"))
    #expect(self.context(.header("X-User"), [:]) == .none)
  }

  @Test func cookieIsFoundAmongOthers() {
    let headers = ["cookie": "theme=dark; session=\"abc123\" ;other=1"]
    #expect(self.context(.cookie("session"), headers) == PickContext(hashKey: "abc123"))
    #expect(self.context(.cookie("sess"), headers) == .none)
    #expect(self.context(.cookie("session"), [:]) == .none)
    #expect(HashKeySource.cookie(named: "a", in: "a=") == "")
    #expect(HashKeySource.cookie(named: "b", in: "a=1;b=2") == "2")
  }

  @Test func sourceAddressUsesTheClient() {
    #expect(self.context(.sourceAddress, [:]) == PickContext(sourceAddress: self.client))
    #expect(HashKeySource.sourceAddress.pickContext(header: { _ in nil }, sourceAddress: nil) == .none)
  }

  @Test func policyAndSourceUseTheSpecSpelling() throws {
    let policies = try JSONDecoder().decode(
      [BalancerPolicy].self,
      from: Data(#"["round_robin","least_request","ewma","ring_hash","random"]"#.utf8))
    #expect(policies == [.roundRobin, .leastRequest, .ewma, .ringHash, .random])

    let sources = try JSONDecoder().decode(
      [HashKeySource].self,
      from: Data(#"[{"header":"x-user"},{"cookie":"session"},"source_address"]"#.utf8))
    #expect(sources == [.header("x-user"), .cookie("session"), .sourceAddress])
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let encoded = String(decoding: try encoder.encode(sources), as: UTF8.self)
    #expect(encoded == #"[{"header":"x-user"},{"cookie":"session"},"source_address"]"#)
  }

  @Test(arguments: [#""source""#, #"{}"#, #"{"header":""}"#, #"{"header":"a","cookie":"b"}"#, "3"])
  func malformedSourceIsRejected(_ json: String) {
    #expect(throws: DecodingError.self) {
      try JSONDecoder().decode(HashKeySource.self, from: Data(json.utf8))
    }
  }
}
