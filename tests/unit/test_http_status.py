"""`harness.readiness.http_status`, the health checks' HTTP GET over a plain socket: the status of real servers'
answers, read to their end whatever way the server frames them, and clear errors for what is not HTTP."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from harness.readiness import HttpOk, http_status


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = int(self.path.strip("/").split("?")[0] or 200)
        body = b"x" * 100_000  # more than one recv
        self.send_response(status)
        if "nolength" not in self.path:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["HTTP/1.0", "HTTP/1.1"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    # HTTP/1.1: a keep-alive server; the client's `Connection: close` and Content-Length end the read
    handler = type("H", (Handler,), {"protocol_version": request.param})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("status", [200, 204, 404, 503])
def test_the_status_of_a_real_server_is_read(server: str, status: int) -> None:
    assert http_status(f"{server}/{status}?q=1", timeout=5) == status


def test_a_body_without_a_length_is_read_to_the_end_of_the_connection(server: str) -> None:
    # without a length, http.server closes the connection after the body (either protocol version)
    assert http_status(f"{server}/200?nolength", timeout=5) == 200


def test_httpok_names_what_failed(server: str) -> None:
    assert HttpOk(f"{server}/503").check() == f"GET {server}/503: HTTP 503"
    assert HttpOk(f"{server}/200").check() is None


def test_nothing_listening_and_not_http_are_errors_with_a_reason() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reason = HttpOk(f"http://127.0.0.1:{port}/health").check()
    assert (
        reason is not None
        and reason.startswith(f"GET http://127.0.0.1:{port}/health: ")
        and "refused" in reason
    )

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer_garbage() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        with pytest.raises(ValueError, match="not an HTTP response"):
            http_status(url, timeout=5)
    finally:
        listener.close()
