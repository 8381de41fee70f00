import WeftWire

/// The `virtio_net_hdr` the TUN puts in front of every packet it hands over (IFF_VNET_HDR), read
/// into host order: whether the packet's transport checksum is still to be completed and whether
/// it is a segmentation-offload super packet.
public struct VirtioHeader: Sendable, Equatable {
  /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at ``checksumStart`` + ``checksumOffset`` holds
  /// only the pseudo-header sum.
  public static let needsChecksum: UInt8 = 1
  /// GSO kinds (gso_type without the ECN bit).
  public static let gsoNone: UInt8 = 0
  /// TCP over IPv4 (TSO).
  public static let gsoTCPv4: UInt8 = 1
  /// UDP, segmented at L4 (USO).
  public static let gsoUDPL4: UInt8 = 5

  /// flags.
  public var flags: UInt8
  /// gso_type, ECN bit masked off.
  public var gsoType: UInt8
  /// gso_size: the payload bytes per segment.
  public var gsoSize: Int
  /// csum_start: where checksumming starts, from the start of the IP packet.
  public var checksumStart: Int
  /// csum_offset: where the checksum field sits, from ``checksumStart``.
  public var checksumOffset: Int

  /// Reads the ten header bytes at the start of `bytes` (little-endian fields).
  public init(_ bytes: UnsafeRawBufferPointer) {
    func le16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    self.flags = bytes[0]
    self.gsoType = bytes[1] & 0x7f
    self.gsoSize = le16(4)
    self.checksumStart = le16(6)
    self.checksumOffset = le16(8)
  }
}

/// Turns what the TUN hands over with offloads on into wire-ready VXLAN frames: completes a
/// partial checksum, and cuts a TSO/USO super packet (up to 64 KiB) into MTU-sized IPv4 packets,
/// each with its own IP length, ID and checksum and its transport header and checksum, framed back
/// to back in a buffer so that one UDP GSO send carries them all.
///
/// Usage: ``init(packet:header:)`` validates; ``next(into:frameHeader:maxBytes:maxFrames:)``
/// fills one send buffer at a time until it returns nil.
public struct VTEPSegmenter {
  /// Why a super packet cannot be segmented.
  public enum Failure: Error, Sendable, Equatable {
    /// Not IPv4, or a header that does not fit the packet.
    case malformed
    /// A GSO kind Weft does not segment (IPv6, SCTP).
    case unsupported
  }

  private let packet: UnsafeMutableRawBufferPointer
  private let ipHeader: Int
  private let headers: Int
  private let segmentSize: Int
  private let isTCP: Bool
  private var offset: Int
  private var index = 0
  /// Whether the packet is a GSO super packet (false: one packet, returned whole).
  public let isSuperPacket: Bool

  /// Prepares `packet` (an IPv4 packet as read from the TUN, without the virtio header). A packet
  /// that needs no segmentation gets its checksum completed now and is returned whole by `next`.
  public init(packet: UnsafeMutableRawBufferPointer, header: VirtioHeader) throws(Failure) {
    guard packet.count >= 20, packet[0] >> 4 == 4 else { throw .malformed }
    let ipHeader = Int(packet[0] & 0x0f) * 4
    guard ipHeader >= 20, packet.count >= ipHeader else { throw .malformed }
    self.packet = packet
    self.ipHeader = ipHeader
    switch header.gsoType {
    case VirtioHeader.gsoNone:
      if header.flags & VirtioHeader.needsChecksum != 0 {
        try Self.completeChecksum(packet, start: header.checksumStart, offset: header.checksumOffset)
      }
      self.isSuperPacket = false
      self.isTCP = false
      self.headers = packet.count
      self.segmentSize = 0
    case VirtioHeader.gsoTCPv4 where packet[9] == 6:
      guard packet.count >= ipHeader + 20 else { throw .malformed }
      let tcpHeader = Int(packet[ipHeader + 12] >> 4) * 4
      guard tcpHeader >= 20, packet.count >= ipHeader + tcpHeader else { throw .malformed }
      self.isSuperPacket = true
      self.isTCP = true
      self.headers = ipHeader + tcpHeader
      self.segmentSize = header.gsoSize
    case VirtioHeader.gsoUDPL4 where packet[9] == 17:
      guard packet.count >= ipHeader + 8 else { throw .malformed }
      self.isSuperPacket = true
      self.isTCP = false
      self.headers = ipHeader + 8
      self.segmentSize = header.gsoSize
    default:
      throw .unsupported
    }
    if self.isSuperPacket {
      guard self.segmentSize > 0 else { throw .malformed }
    }
    self.offset = self.isSuperPacket ? self.headers : packet.count
  }

  /// The frames one call of ``next(into:frameHeader:maxBytes:maxFrames:)`` wrote.
  public struct Frames: Sendable, Equatable {
    /// How many frames.
    public var count: Int
    /// The size of each frame but the last (the UDP GSO segment size).
    public var frameSize: Int
    /// The bytes written (all frames).
    public var length: Int
  }

  /// Writes the next frames into `out`, back to back: each is the 22-byte `frameHeader` (VXLAN and
  /// inner Ethernet) followed by one IPv4 packet. Stops before `maxBytes` or `maxFrames`; returns
  /// nil when the whole packet has been written.
  public mutating func next(
    into out: UnsafeMutableRawBufferPointer, frameHeader: UnsafeRawBufferPointer, maxBytes: Int,
    maxFrames: Int
  ) -> Frames? {
    let prefix = frameHeader.count
    if !self.isSuperPacket {
      guard self.index == 0, prefix + self.packet.count <= out.count else { return nil }
      self.index = 1
      out.baseAddress!.copyMemory(from: frameHeader.baseAddress!, byteCount: prefix)
      (out.baseAddress! + prefix).copyMemory(from: self.packet.baseAddress!, byteCount: self.packet.count)
      let length = prefix + self.packet.count
      return Frames(count: 1, frameSize: length, length: length)
    }
    guard self.offset < self.packet.count else { return nil }
    let frameSize = prefix + self.headers + self.segmentSize
    let limit = min(maxBytes, out.count)
    var written = 0
    var count = 0
    while self.offset < self.packet.count, count < maxFrames {
      let chunk = min(self.segmentSize, self.packet.count - self.offset)
      let length = prefix + self.headers + chunk
      guard written + length <= limit else { break }
      let frame = UnsafeMutableRawBufferPointer(rebasing: out[written..<(written + length)])
      frame.baseAddress!.copyMemory(from: frameHeader.baseAddress!, byteCount: prefix)
      let ip = UnsafeMutableRawBufferPointer(rebasing: frame[prefix...])
      ip.baseAddress!.copyMemory(from: self.packet.baseAddress!, byteCount: self.headers)
      (ip.baseAddress! + self.headers).copyMemory(
        from: self.packet.baseAddress! + self.offset, byteCount: chunk)
      self.fixHeaders(ip, chunk: chunk, last: self.offset + chunk == self.packet.count)
      self.offset += chunk
      self.index += 1
      written += length
      count += 1
      if chunk < self.segmentSize { break }  // only the last frame may be short
    }
    return count == 0 ? nil : Frames(count: count, frameSize: frameSize, length: written)
  }

  /// Rewrites one segment's IPv4 and transport headers: total length, ID, checksums; for TCP the
  /// sequence number and the flags that belong only to the first or last segment.
  private func fixHeaders(_ ip: UnsafeMutableRawBufferPointer, chunk: Int, last: Bool) {
    let total = self.headers + chunk
    Self.store16(ip, 2, UInt16(total))
    let id = UInt16(ip[4]) << 8 | UInt16(ip[5])
    Self.store16(ip, 4, id &+ UInt16(truncatingIfNeeded: self.index))
    Self.store16(ip, 10, 0)
    var ipSum = Checksum()
    ipSum.add(bytes: UnsafeRawBufferPointer(rebasing: ip[0..<self.ipHeader]))
    Self.store16(ip, 10, ipSum.value)
    let l4 = self.ipHeader
    let l4Length = total - l4
    let checksumField: Int
    if self.isTCP {
      let sequence = VTEPCodec.load32(UnsafeRawBufferPointer(ip), l4 + 4)
      let advanced = sequence &+ UInt32(truncatingIfNeeded: self.offset - self.headers)
      Self.store32(ip, l4 + 4, advanced)
      if !last { ip[l4 + 13] &= ~0x09 }  // FIN and PSH only on the last segment
      if self.index > 0 { ip[l4 + 13] &= ~0x80 }  // CWR only on the first
      checksumField = l4 + 16
    } else {
      Self.store16(ip, l4 + 4, UInt16(l4Length))
      checksumField = l4 + 6
    }
    Self.store16(ip, checksumField, 0)
    var sum = Checksum()
    sum.add(bytes: UnsafeRawBufferPointer(rebasing: ip[12..<20]))
    sum.add(UInt16(ip[9]))
    sum.add(UInt16(l4Length))
    sum.add(bytes: UnsafeRawBufferPointer(rebasing: ip[l4..<total]))
    var value = sum.value
    if !self.isTCP && value == 0 { value = 0xffff }  // RFC 768: a computed zero goes out as all ones
    Self.store16(ip, checksumField, value)
  }

  /// Completes the transport checksum of a packet the kernel left with only its pseudo-header sum
  /// in the field (checksum offload): sums from `start` to the end and stores the complement.
  public static func completeChecksum(_ packet: UnsafeMutableRawBufferPointer, start: Int, offset: Int)
    throws(Failure)
  {
    guard start >= 20, offset >= 0, start + offset + 2 <= packet.count else { throw .malformed }
    var sum = Checksum()
    sum.add(bytes: UnsafeRawBufferPointer(rebasing: packet[start...]))
    var value = sum.value
    if packet[9] == 17 && value == 0 { value = 0xffff }
    store16(packet, start + offset, value)
  }

  @inline(__always)
  static func store16(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ value: UInt16) {
    p[at] = UInt8(value >> 8)
    p[at + 1] = UInt8(truncatingIfNeeded: value)
  }

  @inline(__always)
  static func store32(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ value: UInt32) {
    store16(p, at, UInt16(value >> 16))
    store16(p, at + 2, UInt16(truncatingIfNeeded: value))
  }
}
