import NIOCore

/// Builds a classic libpcap capture file in memory (little-endian, microsecond timestamps).
public struct PcapWriter: Sendable {
  /// `LINKTYPE_ETHERNET`.
  public static let linkTypeEthernet: UInt32 = 1

  /// The file so far: global header plus one record per appended frame.
  public private(set) var buffer: ByteBuffer
  /// Frames longer than this are truncated in the file (their original length is kept).
  public let snapLength: UInt32
  /// Number of frames appended.
  public private(set) var count = 0

  /// Starts a file with the given link type (Ethernet by default).
  public init(snapLength: UInt32 = 262_144, linkType: UInt32 = PcapWriter.linkTypeEthernet) {
    self.snapLength = snapLength
    var b = ByteBuffer()
    b.writeInteger(UInt32(0xA1B2_C3D4), endianness: .little)
    b.writeInteger(UInt16(2), endianness: .little)
    b.writeInteger(UInt16(4), endianness: .little)
    b.writeInteger(Int32(0), endianness: .little)
    b.writeInteger(UInt32(0), endianness: .little)
    b.writeInteger(snapLength, endianness: .little)
    b.writeInteger(linkType, endianness: .little)
    self.buffer = b
  }

  /// Appends a frame captured at `seconds` + `microseconds` since the epoch.
  public mutating func append(_ frame: ByteBuffer, seconds: UInt32 = 0, microseconds: UInt32 = 0) {
    let length = UInt32(truncatingIfNeeded: frame.readableBytes)
    let captured = min(length, self.snapLength)
    self.buffer.writeInteger(seconds, endianness: .little)
    self.buffer.writeInteger(microseconds, endianness: .little)
    self.buffer.writeInteger(captured, endianness: .little)
    self.buffer.writeInteger(length, endianness: .little)
    self.buffer.writeImmutableBuffer(frame.getSlice(at: frame.readerIndex, length: Int(captured)) ?? frame)
    self.count += 1
  }

  /// The file contents as bytes.
  public var bytes: [UInt8] { Array(self.buffer.readableBytesView) }
}
