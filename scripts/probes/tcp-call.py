#!/usr/bin/env python3
"""Connects to HOST PORT, sends TEXT, half-closes, and prints all it got back on one line
(newlines as spaces); exits 1 when the connection fails."""
import socket, sys

host, port, text = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
try:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(text)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
except OSError as error:
    print(f"error: {error}")
    sys.exit(1)
print(got.decode(errors="replace").replace("\n", " ").strip())
