"""Reference-app benchmark: `python -m bench.app` (or `nox -s bench -- app`).

On a fresh stack (free ports, temporary state dir), prints:
- API → worker → captured email latency: an order is placed, the worker sends its confirmation through SES,
  the emulator captures it; p50/p95 over `--orders` orders (target: p50 < 300 ms);
- requests/second of `GET /api/v1/health` and of an authenticated tenant read (`GET /api/v1/catalog`),
  against extra uvicorn servers with 1 and 2 workers started for the measurement, and the ratio 2 : 1.
Load comes from `wrk` when it is on PATH (Debian package `wrk`), else from a Python thread pool (which
competes for the same CPUs: the figures are then lower bounds).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import httpx

from harness.backends.app import app_process_env
from harness.ports import free_port
from harness.readiness import HttpOk, wait_until_ready
from harness.scenarios.identity import CognitoIdentity
from harness.testing import RunningStack, start_stack

PASSWORD = "Bench-Passw0rd!-long"


def _owner_token(stack: RunningStack) -> tuple[str, str]:
    """A fresh Cognito user (who will own a fresh tenant): (access token, email)."""
    env = stack.env()
    identity = CognitoIdentity(
        stack.client("cognito-idp"),
        env["COGNITO_USER_POOL_ID"],
        env["COGNITO_CLIENT_ID"],
        env["COGNITO_CLIENT_SECRET"],
    )
    email = f"bench-{uuid.uuid4().hex[:10]}@example.test"
    identity.create_user(email, PASSWORD)
    return identity.sign_in(email, PASSWORD).access, email


def _email_latency(stack: RunningStack, token: str, email: str, slug: str, orders: int) -> list[float]:
    api = httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}", "X-Tenant": slug})
    mail = httpx.Client(base_url=stack.aws.url)
    created = api.post(
        "/api/v1/catalog", json={"sku": "BENCH", "name": "Bench item", "price_cents": 100, "currency": "USD"}
    )
    created.raise_for_status()
    latencies = []
    for _ in range(orders):
        seen = len(mail.get("/_harness/ses/messages", params={"to": email}).json())
        t0 = time.perf_counter()
        api.post("/api/v1/orders", json={"items": [{"sku": "BENCH", "qty": 1}]}).raise_for_status()
        while len(mail.get("/_harness/ses/messages", params={"to": email}).json()) <= seen:
            if time.perf_counter() - t0 > 30:
                raise SystemExit("an order's confirmation email did not arrive within 30 s")
            time.sleep(0.005)
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


def _start_uvicorn(stack: RunningStack, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = app_process_env(stack.env("backend")) | {"RATE_LIMIT_PER_MINUTE": "100000000"}
    service = stack.topology.services["backend"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", service.app, "--port", str(port), "--workers", str(workers),
         "--no-access-log", "--log-level", "warning"],
        env=env,
        cwd=stack.runner.project_dir,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    if reason := wait_until_ready(HttpOk(url + (service.health_path or "/")), timeout=60):
        proc.terminate()
        raise SystemExit(f"uvicorn with {workers} workers did not start: {reason}")
    return proc, url


def _rps(url: str, headers: dict[str, str], seconds: float, connections: int) -> float:
    if wrk := shutil.which("wrk"):
        args = [wrk, "-t2", f"-c{connections}", f"-d{seconds:.0f}s"]
        for key, value in headers.items():
            args += ["-H", f"{key}: {value}"]
        out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if non2xx:
            raise SystemExit(f"{url}: {non2xx.group(1)} error responses under load")
        return float(match.group(1)) if match else 0.0
    count = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def hammer() -> None:
        nonlocal count
        with httpx.Client(headers=headers) as client:
            while time.perf_counter() < deadline:
                client.get(url).raise_for_status()
                with lock:
                    count += 1

    threads = [threading.Thread(target=hammer) for _ in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=60, help="orders for the email latency (>= 50)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    stack = start_stack(with_app=True)
    results: dict[str, Any] = {}
    try:
        token, email = _owner_token(stack)
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        headers = {"Authorization": f"Bearer {token}"}
        httpx.post(
            f"{stack.api_url}/api/v1/tenants", json={"slug": slug, "name": "Bench"}, headers=headers
        ).raise_for_status()
        latencies = _email_latency(stack, token, email, slug, args.orders)
        q = statistics.quantiles(latencies, n=20)
        results["email_ms"] = {"p50": statistics.median(latencies), "p95": q[18], "n": len(latencies)}
        for workers in (1, 2):
            proc, url = _start_uvicorn(stack, workers)
            try:
                health = _rps(f"{url}/api/v1/health", {}, args.seconds, args.connections)
                read = _rps(
                    f"{url}/api/v1/catalog", headers | {"X-Tenant": slug}, args.seconds, args.connections
                )
            finally:
                proc.terminate()
                proc.wait(timeout=15)
            results[f"rps_{workers}_worker"] = {"health": health, "catalog": read}
    finally:
        stack.stop()

    e = results["email_ms"]
    one, two = results["rps_1_worker"], results["rps_2_worker"]
    load = "wrk" if shutil.which("wrk") else "python threads (lower bound)"
    print(
        f"reference app benchmark (load: {load}, {args.connections} connections, {args.seconds:.0f} s per run)"
    )
    print(
        f"{'order -> captured email':<38}p50 {e['p50']:.0f} ms  p95 {e['p95']:.0f} ms  (n={e['n']}; target p50 < 300 ms)"
    )
    for name in ("health", "catalog"):
        label = "GET /api/v1/health" if name == "health" else "GET /api/v1/catalog (authenticated)"
        print(
            f"{label:<38}1 worker {one[name]:.0f} req/s   2 workers {two[name]:.0f} req/s   "
            f"= {two[name] / one[name]:.2f}x"
        )
    print(json.dumps(results, indent=None))


if __name__ == "__main__":
    main()
