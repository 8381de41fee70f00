import NIOCore

/// TCP header flags.
public struct TCPFlags: OptionSet, Hashable, Sendable {
  /// The flag bits as in the header's low 9 bits.
  public var rawValue: UInt16
  /// Wraps raw flag bits.
  public init(rawValue: UInt16) { self.rawValue = rawValue }
  /// FIN.
  public static let fin = TCPFlags(rawValue: 0x001)
  /// SYN.
  public static let syn = TCPFlags(rawValue: 0x002)
  /// RST.
  public static let rst = TCPFlags(rawValue: 0x004)
  /// PSH.
  public static let psh = TCPFlags(rawValue: 0x008)
  /// ACK.
  public static let ack = TCPFlags(rawValue: 0x010)
  /// URG.
  public static let urg = TCPFlags(rawValue: 0x020)
  /// ECE.
  public static let ece = TCPFlags(rawValue: 0x040)
  /// CWR.
  public static let cwr = TCPFlags(rawValue: 0x080)
}

/// A minimal TCP segment view (RFC 9293): ports, sequence numbers, flags, window, options.
public struct TCPSegment: Hashable, Sendable {
  /// Source port.
  public var sourcePort: UInt16
  /// Destination port.
  public var destinationPort: UInt16
  /// Sequence number.
  public var sequenceNumber: UInt32
  /// Acknowledgment number.
  public var acknowledgmentNumber: UInt32
  /// Flags.
  public var flags: TCPFlags
  /// Receive window.
  public var window: UInt16
  /// The checksum as received; writers compute a fresh one.
  public var checksum: UInt16
  /// Urgent pointer.
  public var urgentPointer: UInt16
  /// Raw option bytes (a slice of the input when decoded); padded to 4 bytes on write.
  public var options: ByteBuffer
  /// Segment data (a slice of the input when decoded).
  public var payload: ByteBuffer

  /// Length of a header without options.
  public static let minimumHeaderLength = 20

  /// Creates a segment; `checksum` starts at zero and is computed on write.
  public init(
    sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32 = 0, acknowledgmentNumber: UInt32 = 0,
    flags: TCPFlags, window: UInt16 = 65535, urgentPointer: UInt16 = 0, options: ByteBuffer = ByteBuffer(),
    payload: ByteBuffer = ByteBuffer()
  ) {
    self.sourcePort = sourcePort
    self.destinationPort = destinationPort
    self.sequenceNumber = sequenceNumber
    self.acknowledgmentNumber = acknowledgmentNumber
    self.flags = flags
    self.window = window
    self.checksum = 0
    self.urgentPointer = urgentPointer
    self.options = options
    self.payload = payload
  }

  /// Decodes a segment; all bytes after the header are payload.
  ///
  /// Throws `.truncated` for input shorter than the header and `.badField` for a data offset
  /// below 5. The checksum is not verified (see `isChecksumValid(source:destination:)`).
  public init(decoding buffer: ByteBuffer) throws(WireError) {
    var r = WireReader(buffer, layer: "tcp")
    self.sourcePort = try r.u16("source port")
    self.destinationPort = try r.u16("destination port")
    self.sequenceNumber = try r.u32("sequence number")
    self.acknowledgmentNumber = try r.u32("acknowledgment number")
    let offsetFlags = try r.u16("data offset")
    let headerLength = Int(offsetFlags >> 12) * 4
    guard headerLength >= Self.minimumHeaderLength else {
      throw WireError(.badField, layer: "tcp", "data offset \(offsetFlags >> 12) below 5")
    }
    self.flags = TCPFlags(rawValue: offsetFlags & 0x01FF)
    self.window = try r.u16("window")
    self.checksum = try r.u16("checksum")
    self.urgentPointer = try r.u16("urgent pointer")
    self.options = try r.slice("options", length: headerLength - Self.minimumHeaderLength)
    self.payload = r.rest()
  }

  /// Header length including padded options.
  public var headerLength: Int { Self.minimumHeaderLength + (self.options.readableBytes + 3) / 4 * 4 }

  private func sum(source: IPAddress, destination: IPAddress, checksum: UInt16) -> Checksum {
    var c = Checksum()
    let length = self.headerLength + self.payload.readableBytes
    c.addPseudoHeader(source: source, destination: destination, protocol: .tcp, length: length)
    c.add(self.sourcePort)
    c.add(self.destinationPort)
    c.add(self.sequenceNumber)
    c.add(self.acknowledgmentNumber)
    c.add(UInt16(self.headerLength / 4) << 12 | self.flags.rawValue & 0x01FF)
    c.add(self.window)
    c.add(checksum)
    c.add(self.urgentPointer)
    c.add(self.options)
    if self.options.readableBytes % 2 == 1 { c.add(octets: [0]) }
    c.add(self.payload)
    return c
  }

  /// True when the received checksum verifies for `source` and `destination`.
  public func isChecksumValid(source: IPAddress, destination: IPAddress) -> Bool {
    self.sum(source: source, destination: destination, checksum: self.checksum).value == 0
  }

  /// Writes the segment with a checksum for `source` and `destination`.
  ///
  /// - Precondition: options are at most 40 bytes.
  public func write(to buffer: inout ByteBuffer, source: IPAddress, destination: IPAddress) {
    precondition(self.options.readableBytes <= 40, "TCP options longer than 40 bytes")
    let c = self.sum(source: source, destination: destination, checksum: 0).value
    buffer.writeInteger(self.sourcePort)
    buffer.writeInteger(self.destinationPort)
    buffer.writeInteger(self.sequenceNumber)
    buffer.writeInteger(self.acknowledgmentNumber)
    buffer.writeInteger(UInt16(self.headerLength / 4) << 12 | self.flags.rawValue & 0x01FF)
    buffer.writeInteger(self.window)
    buffer.writeInteger(c)
    buffer.writeInteger(self.urgentPointer)
    buffer.writeImmutableBuffer(self.options)
    buffer.writeRepeatingByte(
      0, count: self.headerLength - Self.minimumHeaderLength - self.options.readableBytes)
    buffer.writeImmutableBuffer(self.payload)
  }
}
