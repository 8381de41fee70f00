import NIOCore

/// The question of a DNS query (RFC 1035 §4.1.2).
public struct DNSQuestion: Hashable, Sendable {
  /// The name, lower-cased, without the trailing dot.
  public var name: String
  /// QTYPE (1 = A, 28 = AAAA, ...).
  public var type: UInt16
  /// QCLASS (1 = IN).
  public var `class`: UInt16

  /// Creates a question.
  public init(name: String, type: UInt16, class: UInt16 = 1) {
    self.name = name
    self.type = type
    self.class = `class`
  }

  /// QTYPE A.
  public static let typeA: UInt16 = 1
  /// QTYPE AAAA.
  public static let typeAAAA: UInt16 = 28
}

/// A DNS query with one question, as a stub resolver sends it.
public struct DNSQuery: Hashable, Sendable {
  /// The transaction ID the answer must carry.
  public var id: UInt16
  /// The header flags as sent (only RD is echoed back).
  public var flags: UInt16
  /// The question.
  public var question: DNSQuestion

  /// Whether the client asked for recursion (RD).
  public var recursionDesired: Bool { self.flags & 0x0100 != 0 }
}

/// Response codes Weft's resolver answers with.
public enum DNSResponseCode: UInt16, Sendable {
  /// No error.
  case noError = 0
  /// The query was malformed.
  case formatError = 1
  /// The server failed (for example the upstream did not answer).
  case serverFailure = 2
  /// The name does not exist.
  case nameError = 3
  /// Not implemented (an opcode other than QUERY).
  case notImplemented = 4
}

/// Sans-IO DNS for the agents' resolver: reads a query, writes an authoritative answer with A
/// records or an error. Only what a stub resolver sends is accepted: opcode QUERY, one question,
/// an uncompressed name.
public enum DNSMessage {
  static let layer = "dns"

  /// Reads a query. Throws for anything that is not a well-formed one-question query.
  public static func parseQuery(_ input: ByteBuffer) throws(WireError) -> DNSQuery {
    var buffer = input
    guard let id = buffer.readInteger(as: UInt16.self), let flags = buffer.readInteger(as: UInt16.self),
      let qdcount = buffer.readInteger(as: UInt16.self), let _ = buffer.readInteger(as: UInt16.self),
      let _ = buffer.readInteger(as: UInt16.self), let _ = buffer.readInteger(as: UInt16.self)
    else { throw WireError(.truncated, layer: layer, "shorter than the 12-byte header") }
    guard flags & 0x8000 == 0 else {
      throw WireError(.badField, layer: layer, "QR is set: a response, not a query")
    }
    guard (flags >> 11) & 0xf == 0 else {
      throw WireError(.unsupported, layer: layer, "opcode \((flags >> 11) & 0xf) is not QUERY")
    }
    guard qdcount == 1 else {
      throw WireError(.unsupported, layer: layer, "\(qdcount) questions; one is supported")
    }
    var labels: [String] = []
    var nameLength = 0
    while true {
      guard let length = buffer.readInteger(as: UInt8.self) else {
        throw WireError(.truncated, layer: layer, "the question name ends early")
      }
      if length == 0 { break }
      guard length < 64 else {
        throw WireError(.badField, layer: layer, "a label of \(length) bytes (compression?)")
      }
      nameLength += Int(length) + 1
      guard nameLength <= 255 else { throw WireError(.badLength, layer: layer, "the name is over 255 bytes") }
      guard let bytes = buffer.readBytes(length: Int(length)) else {
        throw WireError(.truncated, layer: layer, "a label ends early")
      }
      labels.append(String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }, as: UTF8.self))
    }
    guard let type = buffer.readInteger(as: UInt16.self), let klass = buffer.readInteger(as: UInt16.self)
    else {
      throw WireError(.truncated, layer: layer, "the question ends before its type and class")
    }
    return DNSQuery(
      id: id, flags: flags,
      question: DNSQuestion(name: labels.joined(separator: "."), type: type, class: klass))
  }

  /// An authoritative answer to `query` with one A record per address (none: NODATA), or an error
  /// code with no records.
  public static func answer(
    _ query: DNSQuery, addresses: [IPv4Address] = [], code: DNSResponseCode = .noError, ttl: UInt32 = 5
  ) -> ByteBuffer {
    var out = ByteBuffer()
    out.writeInteger(query.id)
    // QR, AA, RD as asked, RA, RCODE.
    var flags: UInt16 = 0x8000 | 0x0400 | 0x0080 | code.rawValue
    if query.recursionDesired { flags |= 0x0100 }
    out.writeInteger(flags)
    out.writeInteger(UInt16(1))
    out.writeInteger(UInt16(code == .noError ? addresses.count : 0))
    out.writeInteger(UInt16(0))
    out.writeInteger(UInt16(0))
    for label in query.question.name.split(separator: ".") {
      let bytes = Array(label.utf8.prefix(63))
      out.writeInteger(UInt8(bytes.count))
      out.writeBytes(bytes)
    }
    out.writeInteger(UInt8(0))
    out.writeInteger(query.question.type)
    out.writeInteger(query.question.class)
    guard code == .noError else { return out }
    for address in addresses {
      out.writeInteger(UInt16(0xC00C))  // a pointer to the question's name
      out.writeInteger(DNSQuestion.typeA)
      out.writeInteger(UInt16(1))
      out.writeInteger(ttl)
      out.writeInteger(UInt16(4))
      out.writeInteger(address.value)
    }
    return out
  }

  /// A FORMERR answer for a message that could not be parsed but has at least an ID.
  public static func formatError(id: UInt16) -> ByteBuffer {
    var out = ByteBuffer()
    out.writeInteger(id)
    out.writeInteger(UInt16(0x8000 | DNSResponseCode.formatError.rawValue))
    for _ in 0..<4 { out.writeInteger(UInt16(0)) }
    return out
  }
}
