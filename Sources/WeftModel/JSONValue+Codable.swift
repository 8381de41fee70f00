import FoundationEssentials

extension JSONValue {
  /// Encodes any Encodable value into a JSONValue.
  public init<T: Encodable>(encoding value: T) throws {
    let data = try JSONEncoder().encode(value)
    self = try JSONDecoder().decode(JSONValue.self, from: data)
  }

  /// Decodes this value as `T`.
  public func decode<T: Decodable>(_: T.Type = T.self) throws -> T {
    try JSONDecoder().decode(T.self, from: try JSONEncoder().encode(self))
  }
}
