import NIOCore

/// A bounds-checked cursor over a `ByteBuffer` for decoders: every read either returns a value
/// or throws `WireError.truncated` naming the layer, so decoders never trap on short input.
struct WireReader {
  /// The remaining input.
  var buffer: ByteBuffer
  /// The layer named in errors.
  let layer: String
  /// The reader index at creation, to report offsets relative to the start of the layer.
  let start: Int

  init(_ buffer: ByteBuffer, layer: String) {
    self.buffer = buffer
    self.layer = layer
    self.start = buffer.readerIndex
  }

  /// Bytes consumed so far.
  var offset: Int { self.buffer.readerIndex - self.start }

  /// Bytes left.
  var remaining: Int { self.buffer.readableBytes }

  func truncated(_ what: String, _ need: Int) -> WireError {
    WireError(
      .truncated, layer: self.layer,
      "\(what) needs \(need) bytes at offset \(self.offset), \(self.remaining) left")
  }

  mutating func u8(_ what: String) throws(WireError) -> UInt8 {
    guard let v = self.buffer.readInteger(as: UInt8.self) else { throw self.truncated(what, 1) }
    return v
  }

  mutating func u16(_ what: String) throws(WireError) -> UInt16 {
    guard let v = self.buffer.readInteger(as: UInt16.self) else { throw self.truncated(what, 2) }
    return v
  }

  mutating func u32(_ what: String) throws(WireError) -> UInt32 {
    guard let v = self.buffer.readInteger(as: UInt32.self) else { throw self.truncated(what, 4) }
    return v
  }

  mutating func mac(_ what: String) throws(WireError) -> MACAddress {
    guard self.remaining >= 6,
      let hi = self.buffer.readInteger(as: UInt32.self),
      let lo = self.buffer.readInteger(as: UInt16.self)
    else { throw self.truncated(what, 6) }
    return MACAddress(
      UInt8(truncatingIfNeeded: hi >> 24), UInt8(truncatingIfNeeded: hi >> 16),
      UInt8(truncatingIfNeeded: hi >> 8), UInt8(truncatingIfNeeded: hi),
      UInt8(truncatingIfNeeded: lo >> 8), UInt8(truncatingIfNeeded: lo))
  }

  mutating func ipv4(_ what: String) throws(WireError) -> IPv4Address {
    IPv4Address(try self.u32(what))
  }

  mutating func ipv6(_ what: String) throws(WireError) -> IPv6Address {
    guard self.remaining >= 16,
      let hi = self.buffer.readInteger(as: UInt64.self),
      let lo = self.buffer.readInteger(as: UInt64.self)
    else { throw self.truncated(what, 16) }
    return IPv6Address(high: hi, low: lo)
  }

  mutating func slice(_ what: String, length: Int) throws(WireError) -> ByteBuffer {
    guard length >= 0, let s = self.buffer.readSlice(length: length) else {
      throw self.truncated(what, length)
    }
    return s
  }

  mutating func skip(_ what: String, _ length: Int) throws(WireError) {
    guard length >= 0, length <= self.remaining else { throw self.truncated(what, length) }
    self.buffer.moveReaderIndex(forwardBy: length)
  }

  /// Everything left, consumed.
  mutating func rest() -> ByteBuffer {
    self.buffer.readSlice(length: self.buffer.readableBytes) ?? ByteBuffer()
  }
}

extension ByteBuffer {
  /// Writes the six octets of a MAC address.
  mutating func writeMAC(_ mac: MACAddress) {
    let b = mac.bytes
    self.writeInteger(UInt32(b.0) << 24 | UInt32(b.1) << 16 | UInt32(b.2) << 8 | UInt32(b.3))
    self.writeInteger(UInt16(b.4) << 8 | UInt16(b.5))
  }

  /// Writes an IPv4 address in network order.
  mutating func writeIPv4(_ a: IPv4Address) { self.writeInteger(a.value) }

  /// Writes an IPv6 address in network order.
  mutating func writeIPv6(_ a: IPv6Address) {
    self.writeInteger(a.high)
    self.writeInteger(a.low)
  }

  /// Writes the octets of either address family.
  mutating func writeIP(_ a: IPAddress) {
    switch a {
    case .v4(let v): self.writeIPv4(v)
    case .v6(let v): self.writeIPv6(v)
    }
  }
}
