"""After a 500 the backend keeps the keep-alive connection usable: concurrent keep-alive clients mixing
failing and healthy requests see no reset connection (it was 63 of 1,000 under load)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from harness.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SERVER = """
import sys, uvicorn
from app.main import create_app
app = create_app()

@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug in a handler")

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
CLIENTS = 8
START_TIMEOUT = 180.0  # a loaded CI machine imports the app slowly
ROUNDS = 40


@pytest.fixture
def backend_with_a_bug(backend_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "backend.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        env=os.environ | backend_env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                httpx.get(f"{url}/api/v1/health", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    state = f"exited {process.returncode}" if process.poll() is not None else "not answering"
                    log_text = (tmp_path / "backend.log").read_text()
                    raise AssertionError(
                        f"backend {state} after {START_TIMEOUT:.0f} s:\n{log_text}"
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_500_does_not_take_the_next_request_on_its_connection_down(backend_with_a_bug: str) -> None:
    def client_run(_: int) -> tuple[int, int, list[str]]:
        errors: list[str] = []
        failures = successes = 0
        # One connection per client, reused for every request (keep-alive), as a browser or SDK does.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=backend_with_a_bug, limits=limits, timeout=30) as client:
            for _ in range(ROUNDS):
                try:
                    boom = client.get("/boom")
                    assert boom.status_code == 500
                    assert boom.json()["error"]["code"] == "internal_error"
                    assert boom.headers.get("connection") != "close"
                    failures += 1
                    ok = client.get("/api/v1/openapi.json")
                    assert ok.status_code == 200
                    successes += 1
                except httpx.TransportError as exc:
                    errors.append(type(exc).__name__)
        return failures, successes, errors

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client_run, range(CLIENTS)))
    errors = [e for _, _, errs in results for e in errs]
    print(f"keep-alive: {CLIENTS} clients x {ROUNDS} rounds, transport errors: {len(errors)}")
    assert errors == []
    assert sum(s for _, s, _ in results) == CLIENTS * ROUNDS
