#!/usr/bin/python3
"""Frames built by scapy, an independent encoder, for the WeftWire cross-check tests.

Prints a JSON list of cases: {"name", "hex", "expect"}. "expect" maps fact names (the vocabulary
of Tests/WeftWireTests/Dissector.swift, e.g. "ip.src", "inner.tcp.dport", "vxlan.vni", "error")
to the string values WeftWire must report for the frame. Scapy fills in every length and
checksum it is not told, so unless a case says otherwise all checksums must verify.

Run with Debian's /usr/bin/python3 (python3-scapy).
"""

import ipaddress
import json
import sys

from scapy.all import (  # noqa: F401 (layers register themselves on import)
    ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest, ICMPv6PacketTooBig, IPv6,
    IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw, RouterAlert,
)
from scapy.layers.ipsec import AH
from scapy.layers.vxlan import VXLAN

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
cases = []


def add(name, pkt, expect):
    cases.append({"name": name, "hex": bytes(pkt).hex(), "expect": {k: str(v) for k, v in expect.items()}})


def b(v):
    return "true" if v else "false"


def v6(text):
    return str(ipaddress.IPv6Address(text))


def eth(pkt):
    return Ether(src=MAC_A, dst=MAC_B) / pkt


# IPv4 / UDP with options (router alert + NOP + EOL padding), fragment fields, TOS.
add("ipv4-options-udp",
    eth(IP(src="10.1.2.3", dst="10.4.5.6", ttl=17, id=0x4242, tos=0xb8, flags="DF",
           options=[b"\x94\x04\x00\x00", b"\x01"]) / UDP(sport=1234, dport=53) / Raw(b"q" * 33)),
    {"eth.src": MAC_A, "eth.dst": MAC_B, "eth.type": "0x0800", "ip.src": "10.1.2.3", "ip.dst": "10.4.5.6",
     "ip.ttl": 17, "ip.id": 0x4242, "ip.tos": 0xb8, "ip.hl": 28, "ip.len": 28 + 8 + 33, "ip.proto": 17,
     "ip.df": "true", "ip.mf": "false", "ip.frag": 0, "ip.checksum_ok": "true",
     "udp.sport": 1234, "udp.dport": 53, "udp.len": 41, "udp.checksum_ok": "true"})

# Ethernet padding after a short IPv4 packet must not become payload.
short = eth(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"x"))
add("ipv4-ethernet-padding", bytes(short) + b"\x00" * 17,
    {"ip.len": 29, "udp.len": 9, "udp.checksum_ok": "true", "ip.checksum_ok": "true"})

# IPv4 fragment (not first): L4 is not parsed.
add("ipv4-later-fragment",
    eth(IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=100, proto=17) / Raw(b"f" * 24)),
    {"ip.mf": "true", "ip.frag": 100, "ip.proto": 17, "ip.checksum_ok": "true", "udp.sport": "absent"})

# Wrong IPv4 header checksum is detected; UDP checksum zero means "none".
add("ipv4-bad-checksum",
    eth(IP(src="10.0.0.1", dst="10.0.0.2", chksum=0x1234) / UDP(sport=7, dport=9, chksum=0) / Raw(b"zz")),
    {"ip.checksum_ok": "false", "udp.checksum_ok": "true", "udp.dport": 9})

# Wrong UDP checksum.
add("ipv4-bad-udp-checksum",
    eth(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=7, dport=9, chksum=0x1111) / Raw(b"zz")),
    {"ip.checksum_ok": "true", "udp.checksum_ok": "false"})

# TCP SYN with options.
add("ipv4-tcp",
    eth(IP(src="192.168.7.1", dst="192.168.7.2") /
        TCP(sport=43210, dport=443, seq=123456789, ack=0, flags="S",
            options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7)])),
    {"ip.proto": 6, "tcp.sport": 43210, "tcp.dport": 443, "tcp.seq": 123456789, "tcp.flags": 0x002,
     "tcp.hl": 32, "tcp.checksum_ok": "true"})

# 802.1Q and QinQ.
add("dot1q",
    Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=42, prio=3) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(),
    {"vlan.ids": "42", "eth.type": "0x0800", "ip.src": "10.0.0.1", "udp.checksum_ok": "true"})
add("qinq",
    Ether(src=MAC_A, dst=MAC_B) / Dot1AD(vlan=100) / Dot1Q(vlan=4000) /
    IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=10, dport=20),
    {"vlan.ids": "100,4000", "eth.type": "0x86dd", "ipv6.src": v6("fd00::1"), "udp.dport": 20,
     "udp.checksum_ok": "true"})

# ARP request and reply.
add("arp-request",
    Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC_A, psrc="10.0.0.1", pdst="10.0.0.2"),
    {"eth.type": "0x0806", "arp.op": 1, "arp.hwsrc": MAC_A, "arp.psrc": "10.0.0.1", "arp.pdst": "10.0.0.2",
     "arp.hwdst": "00:00:00:00:00:00"})
add("arp-reply",
    Ether(src=MAC_B, dst=MAC_A) / ARP(op=2, hwsrc=MAC_B, psrc="10.0.0.2", hwdst=MAC_A, pdst="10.0.0.1"),
    {"arp.op": 2, "arp.hwsrc": MAC_B, "arp.psrc": "10.0.0.2", "arp.hwdst": MAC_A, "arp.pdst": "10.0.0.1"})

# IPv6 with hop-by-hop, destination options, routing, fragment (first) headers, then UDP.
add("ipv6-ext-udp",
    eth(IPv6(src="2001:db8::1", dst="2001:db8:0:1::2", hlim=9, fl=0xabcde, tc=0x20) /
        IPv6ExtHdrHopByHop(options=[RouterAlert()]) / IPv6ExtHdrDestOpt() /
        IPv6ExtHdrRouting(addresses=["2001:db8::99"]) / IPv6ExtHdrFragment(id=0x01020304, m=0, offset=0) /
        UDP(sport=5353, dport=5353) / Raw(b"mdns?")),
    {"ipv6.src": v6("2001:db8::1"), "ipv6.dst": v6("2001:db8:0:1::2"), "ipv6.hlim": 9, "ipv6.fl": 0xabcde,
     "ipv6.tc": 0x20, "ipv6.chain": "0,60,43,44", "ipv6.ulp": 17, "ipv6.frag_id": 0x01020304,
     "ipv6.frag_offset": 0, "ipv6.frag_m": "false", "ipv6.final_dst": v6("2001:db8::99"), "udp.sport": 5353, "udp.len": 13, "udp.checksum_ok": "true"})

# AH (length in 4-byte units) before TCP.
add("ipv6-ah-tcp",
    eth(IPv6(src="fd00::1", dst="fd00::2") / AH(nh=6, payloadlen=4, spi=0x100, seq=1, icv=b"\x00" * 12) / TCP(sport=1, dport=2)),
    {"ipv6.chain": "51", "ipv6.ulp": 6, "tcp.sport": 1, "tcp.dport": 2})

# Later IPv6 fragment: the walk stops at the fragment header.
add("ipv6-later-fragment",
    eth(IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=9, m=1, offset=185, nh=17) / Raw(b"d" * 16)),
    {"ipv6.chain": "44", "ipv6.ulp": 17, "ipv6.frag_offset": 185, "ipv6.frag_m": "true", "udp.sport": "absent"})

# Hop-by-hop not first is rejected.
add("ipv6-hbh-not-first",
    eth(IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / UDP()),
    {"error": "ipv6:badField"})

# ICMP fragmentation needed quoting an IPv4/UDP packet.
quoted4 = IP(src="10.9.9.9", dst="10.8.8.8", flags="DF") / UDP(sport=1, dport=2) / Raw(b"p" * 1400)
add("icmp-frag-needed",
    eth(IP(src="10.0.0.254", dst="10.9.9.9") / ICMP(type=3, code=4, nexthopmtu=1400) / bytes(quoted4)[:548]),
    {"ip.proto": 1, "icmp.type": 3, "icmp.code": 4, "icmp.mtu": 1400, "icmp.checksum_ok": "true",
     "icmp.quote_len": 548})

# ICMP echo.
add("icmp-echo", eth(IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=1, seq=2) / Raw(b"ping")),
    {"icmp.type": 8, "icmp.code": 0, "icmp.checksum_ok": "true"})

# ICMPv6 packet too big quoting an IPv6 packet.
quoted6 = IPv6(src="fd00::9", dst="fd00::8") / UDP(sport=3, dport=4) / Raw(b"p" * 1400)
add("icmpv6-packet-too-big",
    eth(IPv6(src="fd00::fe", dst="fd00::9") / ICMPv6PacketTooBig(mtu=1280) / bytes(quoted6)[:1232]),
    {"ipv6.ulp": 58, "icmpv6.type": 2, "icmpv6.code": 0, "icmpv6.mtu": 1280, "icmpv6.checksum_ok": "true",
     "icmpv6.quote_len": 1232})
add("icmpv6-echo", eth(IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(id=5, seq=6, data=b"abc")),
    {"icmpv6.type": 128, "icmpv6.checksum_ok": "true"})

# VXLAN over IPv4 (UDP checksum 0) carrying Ether/IPv4/TCP.
inner_tcp = Ether(src="02:aa:00:00:00:01", dst="02:aa:00:00:00:02") / IP(src="172.16.0.1", dst="172.16.0.2") / \
    TCP(sport=5555, dport=80, flags="PA") / Raw(b"GET / HTTP/1.1\r\n\r\n")
add("vxlan4-tcp",
    eth(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=50001, dport=4789, chksum=0) / VXLAN(vni=0xabcdef) /
        inner_tcp),
    {"udp.dport": 4789, "udp.checksum_ok": "true", "vxlan.vni": 0xabcdef,
     "inner.eth.src": "02:aa:00:00:00:01", "inner.ip.src": "172.16.0.1", "inner.ip.dst": "172.16.0.2",
     "inner.tcp.sport": 5555, "inner.tcp.dport": 80, "inner.tcp.flags": 0x018, "inner.tcp.checksum_ok": "true",
     "inner.ip.checksum_ok": "true"})

# VXLAN over IPv6 (UDP checksum computed) with a tagged inner frame carrying IPv6/UDP.
inner6 = Ether(src="02:aa:00:00:00:03", dst="02:aa:00:00:00:04") / Dot1Q(vlan=7) / \
    IPv6(src="fd10::3", dst="fd10::4") / UDP(sport=9, dport=10) / Raw(b"inner")
add("vxlan6-udp6",
    eth(IPv6(src="2001:db8::a", dst="2001:db8::b") / UDP(sport=61000, dport=4789) / VXLAN(vni=1) / inner6),
    {"ipv6.ulp": 17, "udp.checksum_ok": "true", "vxlan.vni": 1, "inner.vlan.ids": "7",
     "inner.ipv6.src": v6("fd10::3"), "inner.udp.dport": 10, "inner.udp.checksum_ok": "true"})

# Reserved VXLAN bits set: ignored.
add("vxlan-reserved-bits",
    eth(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=50002, dport=4789) /
        Raw(bytes.fromhex("ffffffff123456ff")) / inner_tcp),
    {"vxlan.vni": 0x123456, "inner.ip.src": "172.16.0.1", "udp.checksum_ok": "true"})

# VXLAN without the I flag is rejected.
add("vxlan-no-i-flag",
    eth(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=50003, dport=4789) /
        Raw(bytes.fromhex("00000000000001ff")) / inner_tcp),
    {"udp.checksum_ok": "true", "error": "vxlan:badField"})

json.dump(cases, sys.stdout)
