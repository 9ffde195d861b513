"""Runs first in every app container: `python -m harness.backends.docker.launcher PORT TARGET_HOST TARGET_PORT
COMMAND...`.

It binds 127.0.0.1:PORT (the emulator's published port) inside the container, forwards each connection to
TARGET_HOST:TARGET_PORT (the emulator on the stack's network) from a forked child, then execs COMMAND.
AWS_ENDPOINT_URL is thus the same URL inside the container and on the host, so the presigned S3 URLs the app
signs work in a browser or a test on the host (the job LocalStack's localhost.localstack.cloud name does). The
listener is bound before the exec, so the app never races it.

Standard library only, and its package imports nothing at import time: it starts before every app process.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Sequence

BACKLOG = 128
CONNECT_TIMEOUT_SECONDS = 10
CHUNK = 65536


def pipe(src: socket.socket, dst: socket.socket, done: threading.Lock) -> None:
    """Copy `src` to `dst` until `src` ends; the second of the pair of pipes to finish closes both."""
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    if done.acquire(blocking=False) is False:
        src.close()
        dst.close()


def serve(client: socket.socket, host: str, target: int) -> None:
    """Forward one accepted connection to `host:target` in both directions."""
    try:
        upstream = socket.create_connection((host, target), timeout=CONNECT_TIMEOUT_SECONDS)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    done = threading.Lock()
    threading.Thread(target=pipe, args=(client, upstream, done), daemon=True).start()
    pipe(upstream, client, done)


def forward_forever(listener: socket.socket, host: str, target: int) -> None:
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, host, target), daemon=True).start()


def main(argv: Sequence[str]) -> None:
    if len(argv) < 4:
        sys.exit("usage: python -m harness.backends.docker.launcher PORT TARGET_HOST TARGET_PORT COMMAND...")
    port, host, target, command = int(argv[0]), argv[1], int(argv[2]), list(argv[3:])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    if os.fork() == 0:
        forward_forever(listener, host, target)
    listener.close()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
