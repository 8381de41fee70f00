import Foundation
import NIOCore
import Testing
import WeftWire

/// Frames built by scapy (an independent encoder) must decode in WeftWire to the field values
/// scapy was told to put there, with the checksums scapy computed verifying.
@Suite struct ScapyCrossCheckTests {
  struct Case: Decodable {
    var name: String
    var hex: String
    var expect: [String: String]
  }

  static let script = ExternalTool.repositoryRoot.appendingPathComponent(
    "scripts/wire-crosscheck/scapy_frames.py")

  @Test func weftDecodesScapyFrames() throws {
    let json = try ExternalTool.run("/usr/bin/python3", [Self.script.path])
    let cases = try JSONDecoder().decode([Case].self, from: json)
    #expect(cases.count >= 20)
    for c in cases {
      let facts = Dissector.facts(of: hexBuffer(c.hex))
      if c.expect["error"] == nil, let error = facts["error"] {
        Issue.record("\(c.name): WeftWire failed to decode: \(error)")
        continue
      }
      for (key, want) in c.expect.sorted(by: { $0.key < $1.key }) {
        let got = facts[key] ?? "absent"
        #expect(got == want, "\(c.name): \(key) is \(got), scapy says \(want)")
      }
    }
  }

  @Test func scapyDecodesWeftFrames() throws {
    // The other direction: scapy dissects frames WeftWire built and reports what it sees.
    let frames: [(String, ByteBuffer)] = [
      ("udp4", Sample.udp4()),
      ("qinq", Sample.udp4(vlanTags: [VLANTag(tpid: .qinq, vid: 100), VLANTag(vid: 200)])),
      ("udp6ext", Sample.frame6(Sample.udp6WithExtensions())),
      ("vxlan4", Sample.tunnel4().encapsulate(Sample.tcp4(), vni: try VNI(77))),
      ("vxlan6", Sample.tunnel6().encapsulate(Sample.udp4(), vni: try VNI(0xFF_FFFE))),
    ]
    let program = """
      import sys
      from scapy.all import Ether, IP, IPv6, UDP, TCP, Dot1Q, Dot1AD
      from scapy.layers.vxlan import VXLAN
      for line in sys.stdin:
          name, hx = line.split()
          p = Ether(bytes.fromhex(hx))
          out = [name]
          ips = [l for l in p.iterpayloads() if isinstance(l, (IP, IPv6))]
          for ip in ips:
              out.append("ip=%s>%s" % (ip.src, ip.dst))
              # Re-encoding with the checksum cleared makes scapy recompute it.
              if isinstance(ip, IP):
                  c = ip.copy(); c.chksum = None
                  out.append("ipsum=%s" % (IP(bytes(c)).chksum == ip.chksum))
          for u in [l for l in p.iterpayloads() if isinstance(l, UDP)]:
              out.append("udp=%d>%d" % (u.sport, u.dport))
          for t in [l for l in p.iterpayloads() if isinstance(l, TCP)]:
              out.append("tcp=%d>%d/%s" % (t.sport, t.dport, t.flags))
          for v in [l for l in p.iterpayloads() if isinstance(l, VXLAN)]:
              out.append("vni=%d" % v.vni)
          for q in [l for l in p.iterpayloads() if isinstance(l, (Dot1Q, Dot1AD))]:
              out.append("vlan=%d" % q.vlan)
          print(" ".join(out))
      """
    let input = frames.map { "\($0.0) \(hexString($0.1))" }.joined(separator: "\n") + "\n"
    let dir = try ExternalTool.makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let inputFile = dir.appendingPathComponent("frames.txt")
    try Data(input.utf8).write(to: inputFile)
    let scriptFile = dir.appendingPathComponent("dissect.py")
    try Data(program.utf8).write(to: scriptFile)
    let output = String(
      decoding: try ExternalTool.run(
        "/bin/sh", ["-c", "/usr/bin/python3 \(scriptFile.path) < \(inputFile.path)"]), as: UTF8.self)
    let lines = Dictionary(
      uniqueKeysWithValues: output.split(separator: "\n").map { l in
        (String(l.split(separator: " ")[0]), Set(l.split(separator: " ").dropFirst().map(String.init)))
      })
    #expect(lines["udp4"] == ["ip=10.0.0.1>10.0.0.2", "ipsum=True", "udp=40000>33333"])
    #expect(lines["qinq"]?.isSuperset(of: ["vlan=100", "vlan=200", "udp=40000>33333"]) == true)
    #expect(lines["udp6ext"] == ["ip=fd00::a>fd00::b", "udp=5000>6000"])
    #expect(
      lines["vxlan4"] == [
        "ip=192.168.1.1>192.168.1.2", "ip=10.0.0.1>10.0.0.2", "ipsum=True", "vni=77", "tcp=40001>80/S",
        "udp=\(FlowHash.sourcePort(innerFrame: Sample.tcp4()))>4789",
      ])
    #expect(
      lines["vxlan6"]?.isSuperset(of: ["ip=2001:db8::1>2001:db8::2", "vni=16777214", "udp=40000>33333"])
        == true)
  }
}
