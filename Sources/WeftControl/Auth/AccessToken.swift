import Crypto
import Foundation

/// A bearer token: `ID.SECRET`, an 8-hex-digit id to find its record and a 32-hex-digit
/// (128-bit) secret. The controller keeps only the secret's SHA-256; a token is shown once, when
/// it is made.
public struct AccessToken: Sendable, Hashable {
  /// The public part, which names the token in lists and logs.
  public var id: String
  /// The secret part.
  public var secret: String

  /// Parses `ID.SECRET`; nil for anything else.
  public init?(_ text: String) {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 2, parts[0].count == 8, parts[1].count == 32,
      parts.allSatisfy({ $0.allSatisfy(\.isHexDigit) })
    else { return nil }
    self.id = parts[0].lowercased()
    self.secret = parts[1].lowercased()
  }

  /// A new random token.
  public static func generate() -> AccessToken {
    var rng = SystemRandomNumberGenerator()
    func hex(_ n: Int) -> String {
      (0..<n).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }
    return AccessToken("\(hex(4)).\(hex(16))")!
  }

  /// `ID.SECRET`.
  public var text: String { "\(self.id).\(self.secret)" }

  /// The SHA-256 of the secret, hex.
  public var secretHash: String { Self.hash(self.secret) }

  /// The SHA-256 of any text, hex: how an operator's free-form token is kept.
  public static func hash(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
  }

  /// Compares two hashes in time independent of where they differ.
  static func same(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<x.count { diff |= x[i] ^ y[i] }
    return diff == 0
  }
}
