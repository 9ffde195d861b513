"""Outbox benchmark: `python -m bench.outbox [--orders N]` (or `nox -s bench -- outbox`).

On a fresh stack (free ports, temporary state dir), places `--orders` orders one after another and prints
the p50/p95 of
- `POST /api/v1/orders` (the request: it now also inserts the outbox intent in its transaction), and
- order → captured email (the backend queues the task after the commit, the worker sends it through SES,
  the emulator captures it) — target p50 < 100 ms.

Run it on a tree before the outbox (copy this file there) for the "before" figure; `--json` for machines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.app import _owner_token
from harness.testing import RunningStack, start_stack


def _percentiles(samples: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=20)
    return {"p50": round(statistics.median(samples), 1), "p95": round(q[18], 1), "n": len(samples)}


def measure(stack: RunningStack, orders: int) -> dict[str, Any]:
    token, email = _owner_token(stack)
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {token}"}
    httpx.post(
        f"{stack.api_url}/api/v1/tenants", json={"slug": slug, "name": "Bench"}, headers=auth
    ).raise_for_status()
    api = httpx.Client(base_url=stack.api_url, headers=auth | {"X-Tenant": slug})
    mail = httpx.Client(base_url=stack.aws.url)
    item = {"sku": "BENCH", "name": "Bench item", "price_cents": 100, "currency": "USD"}
    api.post("/api/v1/catalog", json=item).raise_for_status()
    requests, emails = [], []
    for _ in range(orders):
        seen = len(mail.get("/_harness/ses/messages", params={"to": email}).json())
        t0 = time.perf_counter()
        api.post("/api/v1/orders", json={"items": [{"sku": "BENCH", "qty": 1}]}).raise_for_status()
        requests.append((time.perf_counter() - t0) * 1000)
        while len(mail.get("/_harness/ses/messages", params={"to": email}).json()) <= seen:
            if time.perf_counter() - t0 > 30:
                raise SystemExit("an order's confirmation email did not arrive within 30 s")
            time.sleep(0.005)
        emails.append((time.perf_counter() - t0) * 1000)
    return {"post_order_ms": _percentiles(requests), "order_to_email_ms": _percentiles(emails)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=60, help="orders to place (>= 20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stack = start_stack(with_app=True)
    try:
        measure(stack, 5)  # warm-up: first connections, JWKS fetch
        results = measure(stack, max(20, args.orders))
    finally:
        stack.stop()
    if args.json:
        print(json.dumps(results))
        return
    for name, label in (
        ("post_order_ms", "POST /api/v1/orders"),
        ("order_to_email_ms", "order -> captured email"),
    ):
        r = results[name]
        print(f"{label:<26}p50 {r['p50']:.0f} ms  p95 {r['p95']:.0f} ms  (n={r['n']})")
    print("target: order -> captured email p50 < 100 ms")


if __name__ == "__main__":
    main()
