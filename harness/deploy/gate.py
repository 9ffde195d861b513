"""The gate after a deploy: `/api/v1/health` through the load balancer, then the scenarios valid on the
`deployed` target, run by the scenario engine's pytest plugin against the stack outputs.

The scenario engine is reached only through its command line (`python -m pytest <dir> --target deployed
--deployed-outputs <json>`) and the JUnit XML it writes, so this module does not import it.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.deploy.redact import redact
from harness.readiness import NotYet, WaitTimeout, wait_for

GATE_TIMEOUT = 1800.0
HEALTH_TIMEOUT = 180.0
PYTEST_NO_TESTS = 5
TRANSIENT_4XX = frozenset({408, 425, 429})
# getaddrinfo's "Name or service not known" / "No address associated with hostname": the name has no address
PERMANENT_DNS_ERRORS = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)
Runner = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class GateResult:
    passed: bool
    ran: int = 0
    failed: tuple[str, ...] = ()
    detail: str = ""
    skipped: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        if self.skipped:
            return self.detail
        if self.passed:
            return f"gate passed: {self.ran} scenario(s)"
        failed = "".join(f"\n  - {name}" for name in self.failed)
        return f"gate FAILED: {self.detail}{failed}"


def classify_failure(exc: BaseException) -> tuple[bool, str]:
    """(permanent?, reason) of a failed health request. Permanent: what waiting does not fix — a name that does
    not resolve, a TLS failure, a 4xx the gate does not expect. Transient: refused or reset connections,
    timeouts, 5xx (CloudFront and the ALB answer 502/503 while tasks start), 408/425/429, a resolver that
    could not be reached (EAI_AGAIN)."""
    if isinstance(exc, urllib.error.HTTPError):
        if 400 <= exc.code < 500 and exc.code not in TRANSIENT_4XX:
            return True, f"HTTP {exc.code} {exc.reason}"
        return False, f"HTTP {exc.code}"
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.gaierror):
        permanent = reason.errno in PERMANENT_DNS_ERRORS
        return permanent, f"DNS: {reason.strerror or reason}"
    if isinstance(reason, ssl.SSLError | ssl.CertificateError):
        return True, f"TLS: {reason}"
    return False, str(reason)


def check_health(url: str, *, timeout: float = HEALTH_TIMEOUT, interval: float = 5.0) -> GateResult:
    """GET `url` until it answers 200 (CloudFront -> ALB -> a backend task) or `timeout` passes; a permanent
    failure (`classify_failure`) fails at once with its reason."""

    def answer() -> GateResult | NotYet:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200:
                    return GateResult(True, detail=f"{url} answered 200")
                return NotYet(f"HTTP {response.status}")
        except (urllib.error.URLError, OSError) as exc:
            permanent, reason = classify_failure(exc)
            if permanent:
                return GateResult(
                    False, failed=("health",), detail=f"{url}: {reason} (a permanent error: not retried)"
                )
            return NotYet(reason)

    try:
        return wait_for(
            f"GET {url} answers 200", answer, timeout=timeout, interval=interval, max_interval=interval
        )
    except WaitTimeout as exc:
        return GateResult(False, failed=("health",), detail=exc.message)


def run_scenario_gate(
    outputs: Mapping[str, str],
    *,
    scenarios_dir: Path,
    python: str = sys.executable,
    extra_args: Sequence[str] = (),
    timeout: float = GATE_TIMEOUT,
    runner: Runner = subprocess.run,
    env: Mapping[str, str] | None = None,
) -> GateResult:
    """Run the scenarios valid on the `deployed` target against `outputs` (the stack outputs, no secrets);
    `env` is laid over this process's environment, without its AWS_* variables, for the run."""
    with tempfile.TemporaryDirectory(prefix="harness-gate-") as tmp:
        outputs_file = Path(tmp) / "outputs.json"
        outputs_file.write_text(json.dumps(dict(outputs), indent=2, sort_keys=True))
        junit = Path(tmp) / "junit.xml"
        argv = [
            python, "-m", "pytest", str(scenarios_dir),
            "--target", "deployed", "--deployed-outputs", str(outputs_file),
            f"--junitxml={junit}", "-p", "no:cacheprovider", "-q", *extra_args,
        ]  # fmt: skip
        try:
            run_env = None
            if env is not None:
                run_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | dict(env)
            proc = runner(argv, capture_output=True, text=True, timeout=timeout, check=False, env=run_env)
        except subprocess.TimeoutExpired:
            return GateResult(False, detail=f"the scenarios did not finish in {timeout:.0f}s")
        tail = redact("\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:]))
        if proc.returncode == PYTEST_NO_TESTS:
            return GateResult(
                False, detail=f"no scenario valid on the deployed target ran in {scenarios_dir}"
            )
        if not junit.exists():
            return GateResult(
                False,
                detail=f"the scenario run wrote no report (exit {proc.returncode}); is the scenario engine "
                f"installed? last lines:\n{tail}",
            )
        ran, failed = parse_junit(junit)
        passed = passed_scenario_files(junit)
        reasons = failure_reasons(junit)
    if proc.returncode == 0 and not failed:
        missing = unproven_scenarios_without_a_pass(scenarios_dir, passed)
        if missing:
            return GateResult(
                False,
                ran=ran,
                failed=tuple(missing),
                detail="scenarios that rely on behaviours the local tier does not reproduce (docs/fidelity.md) "
                "did not pass on the deployed target, and promotion needs them to",
            )
        return GateResult(True, ran=ran)
    named = tuple(f"{name}: {reasons[name]}" if reasons.get(name) else name for name in failed)
    return GateResult(False, ran=ran, failed=named, detail=f"{len(failed)} of {ran} scenario(s) failed")


def failure_reasons(path: Path) -> dict[str, str]:
    """The first line of each failed or errored case's message (redacted), by the name `parse_junit` gives."""
    _, names = parse_junit(path)
    cases = [c for c in ET.parse(path).getroot().iter("testcase")
             if c.find("failure") is not None or c.find("error") is not None]  # fmt: skip
    reasons = {}
    for name, case in zip(names, cases, strict=True):
        node = case.find("failure")
        node = node if node is not None else case.find("error")
        text = (node.get("message") or node.text or "") if node is not None else ""
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        reasons[name] = redact(first)[:300]
    return reasons


def passed_scenario_files(path: Path) -> set[str]:
    """File names (`orders.yaml`) of the scenarios that ran and passed, from a JUnit XML report."""
    passed = set()
    for case in ET.parse(path).getroot().iter("testcase"):
        if any(case.find(tag) is not None for tag in ("failure", "error", "skipped")):
            continue
        parts = case.get("classname", "").split(".")
        if len(parts) >= 2 and parts[-1] in ("yaml", "yml"):
            passed.add(".".join(parts[-2:]))
    return passed


def unproven_scenarios_without_a_pass(scenarios_dir: Path, passed: set[str]) -> list[str]:
    """Scenario files of `scenarios_dir` that the fidelity ledger says the local tier cannot prove, and that
    did not pass here: each with the behaviours it relies on."""
    from harness import fidelity

    missing = []
    for declared, ids in sorted(fidelity.scenario_dependencies().items()):
        name = Path(declared).name
        unproven = [b.id for b in fidelity.unproven_locally(ids)]
        if unproven and (scenarios_dir / name).is_file() and name not in passed:
            missing.append(f"{name} (relies on {', '.join(unproven)})")
    return missing


def parse_junit(path: Path) -> tuple[int, list[str]]:
    """(test cases run, names of the failed or errored ones) from a JUnit XML report."""
    root = ET.parse(path).getroot()
    cases = list(root.iter("testcase"))
    failed = []
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            name = case.get("name", "?")
            # pytest's classname is the dotted path of the test's module: its last part names the file,
            # except for a scenario file, whose name keeps its extension (`scenarios.orders.yaml`).
            parts = case.get("classname", "").split(".")
            module = ".".join(parts[-2:]) if len(parts) >= 2 and parts[-1] in ("yaml", "yml") else parts[-1]
            failed.append(f"{module}::{name}" if module else name)
    ran = sum(1 for c in cases if c.find("skipped") is None)
    return ran, failed
