#!/usr/bin/env python3
"""An opaque TCP echo on PORT: every connection gets NAME and a newline, then its bytes back;
on the client's half-close it half-closes too."""
import socket, sys, threading

port, name = int(sys.argv[1]), sys.argv[2].encode()

def serve(connection):
    with connection:
        connection.sendall(name + b"\n")
        while True:
            data = connection.recv(65536)
            if not data:
                connection.shutdown(socket.SHUT_WR)
                return
            connection.sendall(data)

listener = socket.create_server(("0.0.0.0", port), reuse_port=True)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
