import NIOCore

/// One IPv6 extension header (RFC 8200 §4): its type and the bytes after its first two.
///
/// The Next Header and length bytes are not stored: the decoder derives them from the chain and
/// the writer computes them from `type` and `body`.
public struct IPv6ExtensionHeader: Hashable, Sendable {
  /// Which extension header this is (`.hopByHop`, `.ipv6Routing`, `.ipv6Fragment`,
  /// `.ipv6DestinationOptions`, `.ah`, ...).
  public var type: IPProtocol
  /// The bytes after the Next Header and length bytes (a slice of the input when decoded).
  public var body: ByteBuffer

  /// Creates a header from its body. The encoded length (`2 + body`) must be a multiple of 8
  /// (of 4 for AH; exactly 8 for a fragment header).
  public init(type: IPProtocol, body: ByteBuffer) {
    self.type = type
    self.body = body
  }

  /// A Hop-by-Hop or Destination Options header holding `options` (TLV-encoded), padded with
  /// Pad1/PadN to a multiple of 8 bytes.
  public static func options(_ type: IPProtocol, _ options: [UInt8] = []) -> IPv6ExtensionHeader {
    var body = ByteBuffer(bytes: options)
    let pad = (8 - (2 + options.count) % 8) % 8
    if pad == 1 {
      body.writeInteger(UInt8(0))
    } else if pad > 1 {
      body.writeInteger(UInt8(1))
      body.writeInteger(UInt8(pad - 2))
      body.writeRepeatingByte(0, count: pad - 2)
    }
    return IPv6ExtensionHeader(type: type, body: body)
  }

  /// A Fragment header.
  public static func fragment(_ fragment: IPv6Fragment) -> IPv6ExtensionHeader {
    var body = ByteBuffer()
    body.writeInteger(fragment.offset << 3 | (fragment.moreFragments ? 1 : 0))
    body.writeInteger(fragment.identification)
    return IPv6ExtensionHeader(type: .ipv6Fragment, body: body)
  }

  /// Encoded length including the two leading bytes.
  public var length: Int { 2 + self.body.readableBytes }

  /// The value of the Hdr Ext Len byte for this header's type and length.
  var lengthByte: UInt8 {
    switch self.type {
    case .ipv6Fragment: 0
    case .ah: UInt8(truncatingIfNeeded: self.length / 4 - 2)
    default: UInt8(truncatingIfNeeded: self.length / 8 - 1)
    }
  }

  /// Writes the header with `next` as its Next Header value.
  ///
  /// - Precondition: the encoded length suits the type (see `init(type:body:)`).
  public func write(to buffer: inout ByteBuffer, next: IPProtocol) {
    switch self.type {
    case .ipv6Fragment: precondition(self.length == 8, "fragment header must be 8 bytes")
    case .ah: precondition(self.length % 4 == 0 && self.length >= 8 && self.length <= 1028, "bad AH length")
    default: precondition(self.length % 8 == 0 && self.length <= 2048, "extension header length not 8n")
    }
    buffer.writeInteger(next.rawValue)
    buffer.writeInteger(self.lengthByte)
    buffer.writeImmutableBuffer(self.body)
  }

  /// True for the protocol numbers this codec walks as extension headers.
  public static func isExtension(_ p: IPProtocol) -> Bool {
    switch p.rawValue {
    case 0, 43, 44, 51, 60, 135, 139, 140: true
    default: false
    }
  }
}

/// The fields of an IPv6 Fragment header.
public struct IPv6Fragment: Hashable, Sendable {
  /// Offset of this fragment's data in 8-byte units (13 bits).
  public var offset: UInt16
  /// The M flag: more fragments follow.
  public var moreFragments: Bool
  /// The identification shared by all fragments of one packet.
  public var identification: UInt32

  /// Creates fragment fields; `offset` is masked to 13 bits.
  public init(offset: UInt16, moreFragments: Bool, identification: UInt32) {
    self.offset = offset & 0x1FFF
    self.moreFragments = moreFragments
    self.identification = identification
  }
}
