"""Pure logic of the harness: SCRAM verifiers, port resolution, env formatting, process records."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from harness.cli import _dotenv_quote
from harness.errors import PortInUseError, TopologyError
from harness.ports import ensure_free, requested_mode, resolve_ports
from harness.process import PidRecord, read_pidfile, tail
from harness.provision.postgres import scram_matches, scram_verifier
from harness.state import StateDir, generate_password


def test_scram_verifier_round_trip() -> None:
    verifier = scram_verifier("s3cret-Password")
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert "s3cret" not in verifier
    assert scram_matches(verifier, "s3cret-Password")
    assert not scram_matches(verifier, "s3cret-password")
    assert not scram_matches(None, "x")
    assert not scram_matches("md5abcdef", "x")
    assert not scram_matches("SCRAM-SHA-256$garbage", "x")


def test_generated_passwords_are_url_safe_and_distinct() -> None:
    a, b = generate_password(), generate_password()
    assert a != b and len(a) == 32 and a.isalnum()


def test_state_secrets_are_stable_and_private(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    first = state.secret("db")
    assert state.secret("db") == first
    assert (tmp_path / "s" / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_corrupt_state_document_is_a_clear_error(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    (tmp_path / "ports.json").write_text("{not json")
    with pytest.raises(Exception, match=r"ports.json is unreadable or not JSON.*"):
        state.read_json("ports.json")


def test_ports_mode_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_PORTS", raising=False)
    assert requested_mode(None) is None
    monkeypatch.setenv("HARNESS_PORTS", "auto")
    assert requested_mode(None) == "auto"
    assert requested_mode("topology") == "topology"
    with pytest.raises(TopologyError, match="HARNESS_PORTS=auto"):
        requested_mode("random")


def test_auto_ports_are_free_distinct_and_kept(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    wanted = {"postgres": 5432, "redis": 6379, "aws": 4566}
    first = resolve_ports(wanted, state, "auto")
    assert len(set(first.values())) == 3 and set(first) == set(wanted)
    assert resolve_ports(wanted, state, None) == first  # no mode given: keep this state dir's choice
    assert resolve_ports(wanted, state, "auto") == first
    assert resolve_ports(wanted, state, "topology") == wanted
    assert json.loads((tmp_path / "ports.json").read_text())["mode"] == "topology"


def test_a_taken_auto_port_is_replaced(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    first = resolve_ports({"redis": 6379}, state, "auto")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", first["redis"]))
        squatter.listen()
        second = resolve_ports({"redis": 6379}, state, "auto")
        assert second["redis"] != first["redis"]
        with pytest.raises(PortInUseError, match=rf"port {first['redis']} for redis is already in use"):
            ensure_free("redis", first["redis"], "redis.port")


def test_dotenv_quoting() -> None:
    assert _dotenv_quote("postgresql://u:p@127.0.0.1:5432/db") == "postgresql://u:p@127.0.0.1:5432/db"
    assert _dotenv_quote('a b"c') == '"a b\\"c"'


def test_pid_record_rejects_a_recycled_pid(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    path.write_text(json.dumps({"pid": os.getpid(), "create_time": time.time() - 10_000, "argv0": "x"}))
    record = read_pidfile(path)
    assert isinstance(record, PidRecord)
    assert record.process() is None  # same pid, different start time: not ours
    path.write_text("garbage")
    assert read_pidfile(path) is None


def test_tail_of_missing_and_long_logs(tmp_path: Path) -> None:
    assert "no log" in tail(tmp_path / "nope.log")
    log = tmp_path / "a.log"
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    assert tail(log, 3).splitlines() == ["line 97", "line 98", "line 99"]
