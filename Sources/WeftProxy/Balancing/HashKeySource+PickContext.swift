import WeftModel

extension HashKeySource {
  /// Builds the context for one request.
  ///
  /// - Parameters:
  ///   - header: Returns the value of a request header by lowercase name, with repeated fields
  ///     joined (by `"; "` for `cookie`), or `nil` when absent.
  ///   - sourceAddress: The client's address, when known.
  /// - Returns: A context with the key's hash, or ``PickContext/none`` when the request has no
  ///   such key (the balancer then places it at random).
  public func pickContext(
    header: (String) -> String?, sourceAddress: EndpointAddress?
  ) -> PickContext {
    switch self {
    case .header(let name):
      guard let value = header(Self.lowercased(name)) else { return .none }
      return PickContext(hashKey: value)
    case .cookie(let name):
      guard let cookies = header("cookie"), let value = Self.cookie(named: name, in: cookies) else {
        return .none
      }
      return PickContext(hashKey: value)
    case .sourceAddress:
      guard let sourceAddress else { return .none }
      return PickContext(sourceAddress: sourceAddress)
    }
  }

  /// Finds a cookie's value in a `cookie` header (`a=1; b=2`), as RFC 6265 section 5.4 writes it.
  static func cookie(named name: String, in header: String) -> Substring? {
    for pair in header.split(separator: ";") {
      let trimmed = pair.drop(while: { $0 == " " || $0 == "\t" })
      guard let equals = trimmed.firstIndex(of: "=") else { continue }
      if trimmed[..<equals] == name[...] {
        var value = trimmed[trimmed.index(after: equals)...]
        while value.last == " " || value.last == "\t" { value = value.dropLast() }
        if value.count >= 2, value.first == "\"", value.last == "\"" {
          value = value.dropFirst().dropLast()
        }
        return value
      }
    }
    return nil
  }

  /// ASCII-lowercases a header name (header names are ASCII tokens).
  private static func lowercased(_ name: String) -> String {
    String(
      decoding: name.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 },
      as: UTF8.self)
  }
}
