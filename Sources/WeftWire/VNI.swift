/// A 24-bit VXLAN network identifier (RFC 7348 §5).
public struct VNI: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
  /// The identifier, always at most `VNI.maximum`.
  public let rawValue: UInt32

  /// The largest VNI, `0xFFFFFF`.
  public static let maximum: UInt32 = 0xFF_FFFF

  /// Wraps `rawValue`, or `nil` when it does not fit 24 bits.
  public init?(rawValue: UInt32) {
    guard rawValue <= Self.maximum else { return nil }
    self.rawValue = rawValue
  }

  /// Wraps `value`; throws `.badField` when it does not fit 24 bits.
  public init(_ value: UInt32) throws(WireError) {
    guard value <= Self.maximum else {
      throw WireError(.badField, layer: "vxlan", "VNI \(value) exceeds 24 bits (max \(Self.maximum))")
    }
    self.rawValue = value
  }

  /// Wraps the low 24 bits of a decoded field.
  init(masking value: UInt32) { self.rawValue = value & Self.maximum }

  /// Numeric order.
  public static func < (l: VNI, r: VNI) -> Bool { l.rawValue < r.rawValue }

  /// The decimal identifier.
  public var description: String { String(self.rawValue) }
}
