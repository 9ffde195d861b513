"""Emulator durability cost: `python -m bench.emulator_durability [--requests N]` (or `nox -s bench -- emulator_durability`).

Starts the emulator twice on a free port with a state file — synchronous snapshots (the default: a changing
request is answered once its snapshot is on disk) and `--async-snapshots` (the background snapshots of
before: a SIGKILL lost the last second) — provisions a bucket and a user pool, then times `--requests` of
each: S3 PutObject (1 KiB), Cognito AdminCreateUser, S3 GetObject (a read: never snapshots). Prints p50/p95.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from harness.ports import free_port

REGION = "me-south-1"


def _start(state_file: Path, asynchronous: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "-m", "harness.emulator", "--port", str(port), "--state-file", str(state_file)]
    argv += ["--region", REGION, "--quiet", *(["--async-snapshots"] if asynchronous else [])]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_harness/health", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the emulator did not start within 60 s")


def _timed(call: Any, n: int) -> dict[str, float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - t0) * 1000)
    q = statistics.quantiles(samples, n=20)
    return {"p50": round(statistics.median(samples), 1), "p95": round(q[18], 1)}


def measure(asynchronous: bool, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        process, url = _start(Path(tmp) / "state.pickle", asynchronous)
        try:
            kwargs: dict[str, Any] = {
                "endpoint_url": url,
                "region_name": REGION,
                "aws_access_key_id": "test",
                "aws_secret_access_key": "test",
            }
            s3: Any = boto3.client("s3", **kwargs)
            idp: Any = boto3.client("cognito-idp", **kwargs)
            s3.create_bucket(Bucket="bench", CreateBucketConfiguration={"LocationConstraint": REGION})
            pool = idp.create_user_pool(PoolName="bench")["UserPool"]["Id"]
            body = b"x" * 1024
            results: dict[str, Any] = {
                "s3_put_object_ms": _timed(
                    lambda i: s3.put_object(Bucket="bench", Key=f"k{i}", Body=body), n
                ),
                "cognito_admin_create_user_ms": _timed(
                    lambda i: idp.admin_create_user(
                        UserPoolId=pool, Username=f"u{i}@bench.test", MessageAction="SUPPRESS"
                    ),
                    n,
                ),
                "s3_get_object_ms": _timed(
                    lambda i: s3.get_object(Bucket="bench", Key=f"k{i}")["Body"].read(), n
                ),
            }
            with urllib.request.urlopen(f"{url}/_harness/health", timeout=5) as response:
                last = json.loads(response.read())["persistence"]["last_snapshot"] or {}
            results["snapshot_bytes"] = last.get("bytes")
            results["last_snapshot_ms"] = last.get("ms")
            return results
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100, help="requests of each kind (>= 20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = max(20, args.requests)
    results = {"async (before)": measure(True, n), "sync (after)": measure(False, n)}
    if args.json:
        print(json.dumps(results))
        return
    for mode, figures in results.items():
        print(
            f"{mode}: snapshot {figures.pop('snapshot_bytes')} bytes, last one took {figures.pop('last_snapshot_ms')} ms"
        )
        for name, r in figures.items():
            print(f"  {name:<32}p50 {r['p50']:.1f} ms  p95 {r['p95']:.1f} ms")


if __name__ == "__main__":
    main()
