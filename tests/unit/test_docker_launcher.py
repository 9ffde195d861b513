"""The Docker tier's loopback launcher (`python -m harness.backends.docker.launcher`), run here for real: it
binds the port, forwards to the target, execs the command, and imports nothing beyond the standard library."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from harness.backends.docker.components import AWS_PORT, launcher_command

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(b"echo:" + data)

    threading.Thread(target=serve, daemon=True).start()
    return server, int(server.getsockname()[1])


def test_the_launcher_forwards_its_port_then_runs_the_command(tmp_path: Path) -> None:
    server, target = _echo_server()
    port = _free_port()
    client = (
        f"import socket; s = socket.create_connection(('127.0.0.1', {port}), timeout=10); "
        "s.sendall(b'ping'); s.shutdown(socket.SHUT_WR); print(s.recv(100).decode())"
    )
    # Output to files, not pipes: the forwarding child the launcher forks holds them open until killed.
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.backends.docker.launcher", str(port), "127.0.0.1", str(target),
             sys.executable, "-c", client],
            cwd=ROOT, stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip
    try:
        code = proc.wait(timeout=60)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the forwarding child the launcher forked (same group)
        server.close()
    assert code == 0, err.read_text()
    assert out.read_text().strip() == "echo:ping"


def test_the_launcher_imports_only_the_standard_library() -> None:
    probe = (
        "import sys, harness.backends.docker.launcher; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('harness', 'docker', 'pydantic'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "harness",
        "harness.backends",
        "harness.backends.docker",
        "harness.backends.docker.launcher",
    ]


def test_containers_start_the_launcher_module_with_the_emulator_port() -> None:
    argv = launcher_command(45123, ["python", "-m", "uvicorn", "app.main:app"])
    assert argv == [
        "python", "-m", "harness.backends.docker.launcher", "45123", "aws", str(AWS_PORT),
        "python", "-m", "uvicorn", "app.main:app",
    ]  # fmt: skip
