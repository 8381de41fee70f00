#!/usr/bin/env python3
"""WebSocket probe: upgrades HOST:PORT/PATH, reads the greeting, sends binary frames (small and
100 kB), checks each echo, closes. Prints one JSON line. Written from RFC 6455, no libraries."""
import base64, json, os, socket, struct, sys

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "/"
s = socket.create_connection((host, port), timeout=15)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
buf = b""
while b"\r\n\r\n" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
head, _, rest = buf.partition(b"\r\n\r\n")
result = {"status": head.split(b"\r\n")[0].decode(errors="replace")}

def frame(op, payload):
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x80 | op])
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

def need(k):
    global rest
    while len(rest) < k:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError
        rest += chunk

def read_frame():
    global rest
    need(2)
    op, n, offset = rest[0] & 0x0F, rest[1] & 0x7F, 2
    if n == 126:
        need(4)
        n, offset = struct.unpack("!H", rest[2:4])[0], 4
    elif n == 127:
        need(10)
        n, offset = struct.unpack("!Q", rest[2:10])[0], 10
    need(offset + n)
    data, rest = rest[offset:offset + n], rest[offset + n:]
    return op, data

try:
    op, greeting = read_frame()
    result["greeting"] = greeting.decode(errors="replace")
    result["echoes"] = []
    for message in [b"one", b"two", os.urandom(100_000)]:
        s.sendall(frame(2, message))
        op, data = read_frame()
        result["echoes"].append(op == 2 and data == message)
    s.sendall(frame(8, struct.pack("!H", 1000)))
    op, _ = read_frame()
    result["closed"] = op == 8
except (EOFError, OSError) as error:
    result["error"] = str(error)
print(json.dumps(result))
