import NIOCore

/// An ARP packet for IPv4 over Ethernet (RFC 826): hardware type 1, protocol `0x0800`.
public struct ARPPacket: Hashable, Sendable {
  /// The ARP operation code.
  public struct Operation: RawRepresentable, Hashable, Sendable {
    /// The value as carried on the wire.
    public var rawValue: UInt16
    /// Wraps a raw operation code.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Request, 1.
    public static let request = Operation(rawValue: 1)
    /// Reply, 2.
    public static let reply = Operation(rawValue: 2)
  }

  /// Encoded length of an Ethernet/IPv4 ARP packet.
  public static let length = 28

  /// Request or reply.
  public var operation: Operation
  /// Sender hardware address.
  public var senderMAC: MACAddress
  /// Sender protocol address.
  public var senderIP: IPv4Address
  /// Target hardware address (zero in requests).
  public var targetMAC: MACAddress
  /// Target protocol address.
  public var targetIP: IPv4Address

  /// Creates a packet.
  public init(
    operation: Operation, senderMAC: MACAddress, senderIP: IPv4Address, targetMAC: MACAddress,
    targetIP: IPv4Address
  ) {
    self.operation = operation
    self.senderMAC = senderMAC
    self.senderIP = senderIP
    self.targetMAC = targetMAC
    self.targetIP = targetIP
  }

  /// Decodes an ARP packet; throws `.unsupported` for anything but Ethernet/IPv4 ARP.
  /// Trailing bytes (Ethernet padding) are ignored.
  public init(decoding buffer: ByteBuffer) throws(WireError) {
    var r = WireReader(buffer, layer: "arp")
    let htype = try r.u16("hardware type")
    let ptype = try r.u16("protocol type")
    let hlen = try r.u8("hardware length")
    let plen = try r.u8("protocol length")
    guard htype == 1, ptype == EtherType.ipv4.rawValue, hlen == 6, plen == 4 else {
      throw WireError(
        .unsupported, layer: "arp", "htype \(htype) ptype \(hex16(ptype)) hlen \(hlen) plen \(plen)")
    }
    self.operation = Operation(rawValue: try r.u16("operation"))
    self.senderMAC = try r.mac("sender hardware address")
    self.senderIP = try r.ipv4("sender protocol address")
    self.targetMAC = try r.mac("target hardware address")
    self.targetIP = try r.ipv4("target protocol address")
  }

  /// A who-has request for `targetIP`.
  public static func request(senderMAC: MACAddress, senderIP: IPv4Address, targetIP: IPv4Address) -> ARPPacket
  {
    ARPPacket(
      operation: .request, senderMAC: senderMAC, senderIP: senderIP, targetMAC: .zero, targetIP: targetIP)
  }

  /// The reply to `request` announcing that `request.targetIP` is at `mac`.
  public static func reply(to request: ARPPacket, with mac: MACAddress) -> ARPPacket {
    ARPPacket(
      operation: .reply, senderMAC: mac, senderIP: request.targetIP, targetMAC: request.senderMAC,
      targetIP: request.senderIP)
  }

  /// Writes the 28-byte packet.
  public func write(to buffer: inout ByteBuffer) {
    buffer.writeInteger(UInt16(1))
    buffer.writeInteger(EtherType.ipv4.rawValue)
    buffer.writeInteger(UInt8(6))
    buffer.writeInteger(UInt8(4))
    buffer.writeInteger(self.operation.rawValue)
    buffer.writeMAC(self.senderMAC)
    buffer.writeIPv4(self.senderIP)
    buffer.writeMAC(self.targetMAC)
    buffer.writeIPv4(self.targetIP)
  }

  /// The packet in an Ethernet frame: requests are broadcast, replies go to the target.
  public var frame: EthernetFrame {
    var payload = ByteBuffer()
    self.write(to: &payload)
    let dst = self.operation == .request ? MACAddress.broadcast : self.targetMAC
    return EthernetFrame(destination: dst, source: self.senderMAC, etherType: .arp, payload: payload)
  }
}
