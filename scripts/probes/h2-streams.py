#!/usr/bin/env python3
"""HTTP/2 probe (prior knowledge, RFC 9113 frames and RFC 7541 literal headers by hand): opens
streams 1, 3 and 5 on one connection; 3 carries an upper-case header name, which the protocol
forbids. Prints JSON: per stream what came back (status byte seen, DATA text, reset), and whether
the connection got a GOAWAY. A proxy must reset stream 3 alone and answer 1 and 5."""
import json, socket, struct, sys

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "/"

def frame(kind, flags, stream, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload

def literal(name, value):
    name, value = name.encode(), value.encode()
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

def request(extra=()):
    fields = [(":method", "GET"), (":scheme", "http"), (":authority", host), (":path", path)] + list(extra)
    return b"".join(literal(n, v) for n, v in fields)

s = socket.create_connection((host, port), timeout=5)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
END_STREAM_HEADERS = 0x1 | 0x4
s.sendall(frame(1, END_STREAM_HEADERS, 1, request()))
s.sendall(frame(1, END_STREAM_HEADERS, 3, request([("X-Bad", "upper")])))
s.sendall(frame(1, END_STREAM_HEADERS, 5, request()))
streams = {1: {}, 3: {}, 5: {}}
goaway = False
buf = b""

def done():
    return all(v.get("ended") or v.get("reset") for v in streams.values())

try:
    while not done() and not goaway:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, flags, stream = buf[3], buf[4], struct.unpack("!I", buf[5:9])[0] & 0x7FFFFFFF
            payload, buf = buf[9:9 + length], buf[9 + length:]
            if kind == 4 and not flags & 1:
                s.sendall(frame(4, 1, 0))
            elif kind == 7:
                goaway = True
            elif stream in streams:
                info = streams[stream]
                if kind == 1:
                    info["headers"] = info.get("headers", 0) + 1
                    info.setdefault("status200", payload[:1] == b"\x88")
                elif kind == 0:
                    info["data"] = info.get("data", "") + payload.decode(errors="replace")
                    s.sendall(frame(8, 0, 0, struct.pack("!I", max(length, 1))))
                elif kind == 3:
                    info["reset"] = struct.unpack("!I", payload[:4])[0]
                if kind in (0, 1) and flags & 1:
                    info["ended"] = True
except OSError as error:
    print(json.dumps({"error": str(error), "streams": streams}))
    sys.exit(0)
print(json.dumps({"goaway": goaway, "streams": {str(k): v for k, v in streams.items()}}))
