#!/usr/bin/env python3
"""Open N TLS connections (full handshake, ALPN http/1.1), hold them idle, then close.

    idle_tls.py HOST PORT CAFILE N READY_FILE STOP_FILE

Writes the number of connections it holds into READY_FILE once all handshakes are done,
then waits (at most 120 s) until STOP_FILE exists, closes everything and exits.
Exits 1 if fewer than N connections could be opened.
"""
import os
import socket
import ssl
import sys
import time

host, port, cafile, n, ready, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols(["http/1.1"])
conns, errors = [], []
for _ in range(n):
    try:
        raw = socket.create_connection((host, port), timeout=10)
        conns.append(ctx.wrap_socket(raw, server_hostname="localhost"))
    except OSError as e:  # ssl.SSLError is an OSError
        errors.append(str(e))
        if len(errors) > 20:
            break
# Give the server a moment to finish its side of the handshakes (TLS 1.3 client Finished).
time.sleep(0.5)
with open(ready + ".tmp", "w") as f:
    f.write(f"{len(conns)}\n")
os.rename(ready + ".tmp", ready)
deadline = time.time() + 120
while not os.path.exists(stop) and time.time() < deadline:
    time.sleep(0.05)
for c in conns:
    try:
        c.close()
    except OSError:
        pass
if len(conns) < n:
    print(f"idle_tls: opened {len(conns)}/{n}; first errors: {errors[:3]}", file=sys.stderr)
    sys.exit(1)
