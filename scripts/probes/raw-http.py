#!/usr/bin/env python3
"""Sends malformed or ambiguous HTTP/1.1 requests, byte for byte as written here (curl would
tidy them), each on its own connection to HOST:PORT, and prints JSON: case -> the answer's
status line ("closed" when the connection closed without one). Cases are named on the command
line; "good" is a well-formed control."""
import json, socket, sys

CASES = {
    "good": b"GET /good HTTP/1.1\r\nHost: x\r\n\r\n",
    "obs-fold": b"GET /fold HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "duplicate-length": b"POST /dup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "length-and-chunked": b"POST /te HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad-request-line": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-header-name": b"GET /name HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    "oversized-header": b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    "too-many-headers": b"GET /many HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
}

host, port = sys.argv[1], int(sys.argv[2])
results = {}
for name in sys.argv[3:]:
    s = socket.create_connection((host, port), timeout=5)
    answer = b""
    try:
        s.sendall(CASES[name])
        while b"\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    s.close()
    results[name] = answer.split(b"\r\n")[0].decode(errors="replace") if answer else "closed"
print(json.dumps(results))
