#!/usr/bin/python3
"""Writes a small seed corpus of well-formed inputs per fuzz target (fuzz/run.sh calls it once).

Usage: /usr/bin/python3 seeds.py CORPUS_DIR     (needs python3-scapy)
"""

import os
import sys

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest, ICMPv6PacketTooBig, IPv6,
                       IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw,
                       RouterAlert)
from scapy.layers.ipsec import AH
from scapy.layers.vxlan import VXLAN

out = sys.argv[1]
inner4 = Ether() / IP(src="172.16.0.1", dst="172.16.0.2") / TCP(sport=5555, dport=80, flags="S") / Raw(b"x" * 8)
inner6 = Ether() / Dot1Q(vlan=5) / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2) / Raw(b"y")
ip4 = [
    IP(src="10.0.0.1", dst="10.0.0.2", options=[b"\x94\x04\x00\x00"]) / UDP(sport=1, dport=2) / Raw(b"a" * 20),
    IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=3) / Raw(b"b" * 16),
    IP(src="10.0.0.1", dst="10.0.0.2") / TCP(options=[("MSS", 1460)]),
    IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=3, code=4, nexthopmtu=1400) / IP(dst="10.0.0.9") / UDP(),
    IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8) / Raw(b"ping"),
]
ip6 = [
    IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / IPv6ExtHdrDestOpt() /
    IPv6ExtHdrRouting(addresses=["fd00::9"]) / IPv6ExtHdrFragment(id=7) / UDP(sport=3, dport=4) / Raw(b"c" * 9),
    IPv6(src="fd00::1", dst="fd00::2") / AH(nh=6, payloadlen=4, icv=b"\x00" * 12) / TCP(),
    IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(offset=10, m=1, nh=17) / Raw(b"d" * 16),
    IPv6(src="fd00::fe", dst="fd00::1") / ICMPv6PacketTooBig(mtu=1280) / IPv6(src="fd00::1") / UDP(),
    IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(data=b"e"),
]
vx = [
    IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=50000, dport=4789) / VXLAN(vni=42) / inner4,
    IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=50001, dport=4789) / VXLAN(vni=43) / inner6,
]
frames = [Ether() / p for p in ip4 + ip6 + vx] + [
    Ether() / Dot1AD(vlan=1) / Dot1Q(vlan=2) / ip4[0],
    Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.1", pdst="10.0.0.2"),
]
seeds = {
    "ethernet": frames,
    "frame": frames,
    "arp": [ARP(psrc="10.0.0.1", pdst="10.0.0.2"), ARP(op=2, psrc="10.0.0.2", pdst="10.0.0.1")],
    "ipv4": ip4 + vx[:1],
    "ipv6": ip6 + vx[1:],
    "icmp": [p[ICMP] for p in ip4 if ICMP in p] + [bytes(p.payload) for p in ip6[3:]],
    "udp": [p[UDP] for p in ip4 + ip6 + vx if UDP in p],
    "vxlan": [bytes(p[UDP].payload) for p in vx],
    # The VTEP target: a control byte (sender, GRO segment size), then what the socket returned.
    "vtep": [bytes([c]) + b for c, b in [
        (0, bytes(VXLAN(vni=7) / Ether(src="02:57:64:60:02:00", dst="02:57:64:60:01:00") /
                  IP(src="100.96.2.7", dst="100.96.1.5") / TCP(sport=5555, dport=80) / Raw(b"z" * 40))),
        (1, bytes(VXLAN(vni=7) / Ether(src="02:57:64:60:02:00", dst="02:57:64:60:01:00") /
                  IP(src="100.96.2.7", dst="100.96.1.5") / UDP(sport=1, dport=2) / Raw(b"u" * 20))),
        (2 * 6, bytes(VXLAN(vni=7) / Ether(src="02:57:64:60:02:00", dst="02:57:64:60:01:00") /
                      IP(src="100.96.2.7", dst="100.96.1.5") / TCP(sport=5555, dport=80) / Raw(b"g" * 3000))),
    ]],
}
for target, items in seeds.items():
    os.makedirs(os.path.join(out, target), exist_ok=True)
    for i, item in enumerate(items):
        with open(os.path.join(out, target, "seed-%02d" % i), "wb") as f:
            f.write(bytes(item))
    print("seeded %s: %d inputs" % (target, len(items)))
