import Testing

@testable import WeftProxy

@Suite struct XXHash64Tests {
  /// Reference values of XXH64 with seed 0, covering every tail length and the 32-byte stripes.
  @Test(arguments: [
    ("", 0xEF46_DB37_51D8_E999 as UInt64),
    ("a", 0xD24E_C4F1_A98C_6E5B),
    ("abc", 0x44BC_2CF5_AD77_0999),
    ("message digest", 0x066E_D728_FCEE_B3BE),
    ("abcdefghijklmnopqrstuvwxyz", 0xCFE1_F278_FA89_835C),
    (
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
      0xE04A_477F_19EE_145D
    ),
  ])
  func matchesReference(_ input: String, _ expected: UInt64) {
    #expect(XXHash64.hash(input) == expected)
    #expect(XXHash64.hash(Array(input.utf8)) == expected)
  }

  @Test func seededReference() {
    #expect(XXHash64.hash("abc", seed: 1) == 0xBEA9_CA81_9932_8908)
  }
}
