"""Port resolution: the topology's ports, or free ones (`--ports auto` / `HARNESS_PORTS=auto`), kept stable."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import psutil

from harness.errors import PortInUseError, TopologyError
from harness.state import StateDir

PORTS_ENV = "HARNESS_PORTS"
PORT_MODES = ("topology", "auto")
PORTS_FILE = "ports.json"
LOOPBACK = "127.0.0.1"


def requested_mode(cli_value: str | None) -> str | None:
    """The ports mode asked for (flag, then env var), or None: keep what this state dir used before."""
    mode = cli_value or os.environ.get(PORTS_ENV) or None
    if mode is not None and mode not in PORT_MODES:
        raise TopologyError(
            f"ports mode {mode!r} is not one of {', '.join(PORT_MODES)}",
            hint=f"use --ports auto (or {PORTS_ENV}=auto) for free ports, or leave it unset",
        )
    return mode


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(avoid: set[int] | None = None) -> int:
    avoid = avoid or set()
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def who_listens(port: int) -> str:
    """A short description of the process listening on `port`, when the OS lets us see it."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    proc = psutil.Process(conn.pid)
                    return f"pid {conn.pid} ({' '.join(proc.cmdline()[:3])})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    except psutil.Error:
        pass
    return "another process"


def ensure_free(component: str, port: int, key: str) -> None:
    if not port_is_free(port):
        raise PortInUseError(
            f"port {port} for {component} is already in use by {who_listens(port)}",
            hint=f"stop that process, change `{key}` in topology.toml, or use free ports with "
            f"`--ports auto` ({PORTS_ENV}=auto)",
        )


def resolve_ports(
    topology_ports: Mapping[str, int],
    state: StateDir,
    mode: str | None,
    running: frozenset[str] = frozenset(),
) -> dict[str, int]:
    """Ports for this stack. Auto mode picks free ports once and reuses them on later `up`s (URLs stored in
    secrets stay valid); topology mode uses the topology's ports."""
    saved = state.read_json(PORTS_FILE)
    saved_ports = saved.get("ports", {}) if isinstance(saved.get("ports"), dict) else {}
    if mode is None:
        mode = str(saved.get("mode", "topology"))
    if mode == "topology":
        ports = dict(topology_ports)
    else:
        ports = {}
        taken: set[int] = set()
        for component in topology_ports:
            previous: int | None = saved_ports.get(component)
            reusable = isinstance(previous, int) and saved.get("mode") == "auto" and previous not in taken
            if previous is not None and reusable and (component in running or port_is_free(previous)):
                ports[component] = previous
            else:
                ports[component] = free_port(taken)
            taken.add(ports[component])
    if ports != saved_ports or saved.get("mode") != mode:
        state.write_json(PORTS_FILE, {"mode": mode, "ports": ports})
    return ports


def saved_ports(state: StateDir) -> dict[str, int]:
    ports = state.read_json(PORTS_FILE).get("ports", {})
    return {str(k): int(v) for k, v in ports.items()} if isinstance(ports, dict) else {}
