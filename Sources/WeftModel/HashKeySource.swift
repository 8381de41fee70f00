/// Where `ring_hash` finds the key that pins a request to an endpoint.
///
/// In a Service spec this is written as `{header: x-user}`, `{cookie: session}` or
/// `source_address`.
public enum HashKeySource: Hashable, Sendable {
  /// The value of the named request header (compared case-insensitively by the caller).
  case header(String)
  /// The value of the named cookie in the `cookie` request header.
  case cookie(String)
  /// The client's IPv4 address (not its port).
  case sourceAddress
}

extension HashKeySource: Codable {
  private enum CodingKeys: String, CodingKey {
    case header
    case cookie
  }

  private static let sourceAddressSpelling = "source_address"

  /// Decodes `source_address`, `{header: name}` or `{cookie: name}`.
  public init(from decoder: any Decoder) throws {
    if let single = try? decoder.singleValueContainer(), let text = try? single.decode(String.self) {
      guard text == Self.sourceAddressSpelling else {
        throw DecodingError.dataCorruptedError(
          in: single,
          debugDescription:
            "hash key source '\(text)' is not 'source_address', {header: name} or {cookie: name}")
      }
      self = .sourceAddress
      return
    }
    let keyed = try decoder.container(keyedBy: CodingKeys.self)
    let header = try keyed.decodeIfPresent(String.self, forKey: .header)
    let cookie = try keyed.decodeIfPresent(String.self, forKey: .cookie)
    switch (header, cookie) {
    case (let name?, nil) where !name.isEmpty:
      self = .header(name)
    case (nil, let name?) where !name.isEmpty:
      self = .cookie(name)
    default:
      throw DecodingError.dataCorrupted(
        DecodingError.Context(
          codingPath: decoder.codingPath,
          debugDescription: "hash key source needs exactly one non-empty 'header' or 'cookie' name"))
    }
  }

  /// Encodes as `source_address`, `{header: name}` or `{cookie: name}`.
  public func encode(to encoder: any Encoder) throws {
    switch self {
    case .sourceAddress:
      var single = encoder.singleValueContainer()
      try single.encode(Self.sourceAddressSpelling)
    case .header(let name):
      var keyed = encoder.container(keyedBy: CodingKeys.self)
      try keyed.encode(name, forKey: .header)
    case .cookie(let name):
      var keyed = encoder.container(keyedBy: CodingKeys.self)
      try keyed.encode(name, forKey: .cookie)
    }
  }
}
