"""Failure reports a person can act on: the step (file:line), the request and the response, the expectation
that failed, the variables, and which audits found what. Secrets never appear: passwords, tokens, the client
secret and signing keys are replaced by `***` wherever they occur, and so are presigned-URL signatures.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ScenarioError
from harness.scenarios.http import Exchange
from harness.secret_guard import remember

MASK = "***"
MAX_BODY_IN_REPORT = 3000
SECRET_NAME = re.compile(r"(?i)(token|secret|password|passwd|credential|signature|api[_-]?key|session)")
_QUERY_SECRETS = re.compile(
    r"(?i)((?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId)=)[^&\s\"']+"
)
_FORM_SECRETS = re.compile(
    r"(?i)((?:x-amz-signature|x-amz-credential|x-amz-security-token|policy)[\"']?\s*[:=]\s*[\"']?)[^,&\s\"'}]+"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


class Masker:
    """Replaces known secret values (and token-like patterns) in any text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 6:
            self._secrets.add(secret)
            remember(secret, "a scenario secret (password, token, key)")  # and no test output shows it

    def text(self, value: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, MASK)
        value = _BEARER.sub(r"\1" + MASK, value)
        value = _QUERY_SECRETS.sub(r"\1" + MASK, value)
        return _FORM_SECRETS.sub(r"\1" + MASK, value)

    def value(self, name: str, value: Any) -> Any:
        """A variable for the report: masked entirely when its name says it is a secret."""
        if SECRET_NAME.search(name):
            return MASK
        if isinstance(value, dict):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(name, v) for v in value]
        return value


@dataclass
class StepFailure(Exception):
    """A step's expectations did not hold (raised inside the runner, rendered by `ScenarioFailed`)."""

    problems: list[str]
    exchange: Exchange | None = None
    observed: str | None = None  # what a probe saw (messages, rows, keys ...)
    attempts: int = 1
    waited: float = 0.0

    def __str__(self) -> str:
        return "; ".join(self.problems)


@dataclass(frozen=True)
class AuditFinding:
    audit: str  # "redis-namespaces" | "task-tenant" | "object-prefix"
    offending: str
    detail: str


@dataclass
class StepRecord:
    number: int
    label: str
    where: str
    status: str  # passed | failed | skipped (on this target) | not run


@dataclass
class ScenarioReport:
    scenario: str
    source: str
    target: str
    run_id: str
    steps: list[StepRecord] = field(default_factory=list)
    failed_step: StepRecord | None = None
    failure: StepFailure | None = None
    setup_error: str | None = None
    setup_exchange: Exchange | None = None
    error: str | None = None  # an unexpected error (the traceback is in the pytest output)
    findings: list[AuditFinding] = field(default_factory=list)
    audits_run: list[str] = field(default_factory=list)
    audits_skipped: dict[str, str] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    cleanup_problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failure or self.setup_error or self.error or self.findings)

    def render(self, masker: Masker) -> str:
        out = [
            f"scenario {self.scenario!r} failed on target {self.target} (run {self.run_id}, {self.source})"
        ]
        if self.setup_error:
            out.append(f"  setup failed: {self.setup_error}")
            if self.setup_exchange is not None:
                out += _exchange_lines(self.setup_exchange)
        if self.failure is not None and self.failed_step is not None:
            step = self.failed_step
            out.append(f"  step {step.number} ({step.where}): {step.label}")
            for problem in self.failure.problems:
                out.append(f"    ✗ {problem}")
            if self.failure.attempts > 1:
                out.append(f"    (tried {self.failure.attempts} times over {self.failure.waited:.1f}s)")
            if self.failure.exchange is not None:
                out += _exchange_lines(self.failure.exchange)
            if self.failure.observed:
                out.append("  observed:")
                out += ["    " + line for line in self.failure.observed.splitlines()]
        if self.error:
            out.append(f"  error: {self.error}")
        if self.findings:
            out.append(f"  audits failed ({len(self.findings)} finding(s)):")
            for finding in self.findings:
                out.append(f"    ✗ {finding.audit}: {finding.offending} — {finding.detail}")
        if self.variables:
            out.append("  variables:")
            for name, value in self.variables.items():
                out.append(f"    {name} = {_short(masker.value(name, value))}")
        if self.steps:
            marks = {"passed": "✓", "failed": "✗", "skipped": "-", "not run": "·"}
            out.append("  steps: " + " ".join(f"{marks[s.status]}{s.number}" for s in self.steps)
                       + "   (✓ passed, ✗ failed, - not on this target, · not run)")  # fmt: skip
        audits = ", ".join(self.audits_run) or "none"
        out.append(f"  audits run: {audits}")
        for audit, why in self.audits_skipped.items():
            out.append(f"  audit skipped: {audit} ({why})")
        if self.cleanup_problems:
            out.append("  cleanup problems: " + "; ".join(self.cleanup_problems))
        return masker.text("\n".join(out))


def _exchange_lines(exchange: Exchange) -> list[str]:
    out = ["  request:", f"    {exchange.method} {exchange.url}"]
    out += [
        f"    {name}: {value}" for name, value in sorted(exchange.request_headers.items()) if _shown(name)
    ]
    if exchange.request_body:
        out += ["    " + line for line in _pretty(exchange.request_body).splitlines()]
    if exchange.error:
        out.append(f"  response: none — {exchange.error} (after {exchange.elapsed_ms:.0f} ms)")
        return out
    out.append(f"  response: {exchange.status} {exchange.reason} in {exchange.elapsed_ms:.0f} ms")
    out += [
        f"    {name}: {value}" for name, value in sorted(exchange.response_headers.items()) if _shown(name)
    ]
    if exchange.response_body:
        out += ["    " + line for line in _pretty(exchange.response_body).splitlines()]
    return out


def _shown(header: str) -> bool:
    return header.lower() not in (
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "content-length",
        "date",
        "server",
    )


def _pretty(body: str) -> str:
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body
    if len(text) > MAX_BODY_IN_REPORT:
        text = text[:MAX_BODY_IN_REPORT] + f"\n… ({len(text) - MAX_BODY_IN_REPORT} more characters)"
    return text


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 300 else text[:299] + "…"


class ScenarioFailed(ScenarioError):
    """A scenario run failed; `str()` is the full, masked report."""

    def __init__(self, report: ScenarioReport, masker: Masker) -> None:
        super().__init__(report.render(masker))
        self.report = report
        self.masker = masker  # the run's secrets (its actors' passwords, tokens): for callers that quote it


def format_findings(findings: Sequence[AuditFinding]) -> str:
    return "\n".join(f"{f.audit}: {f.offending} — {f.detail}" for f in findings)


def mask_mapping(masker: Masker, values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: masker.value(name, value) for name, value in values.items()}


@dataclass
class ScenarioResult:
    """What a passed run reports: its id, step counts, phase timings and which audits ran."""

    run_id: str
    steps_passed: int
    steps_skipped: int
    timings: dict[str, float]
    audits_run: list[str]
    audits_skipped: dict[str, str]
    cleanup_problems: list[str] = field(default_factory=list)


def brief_traceback(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    tail = "".join(lines[-6:]).rstrip()
    return f"{type(exc).__name__}: {exc}\n" + "\n".join("    " + line for line in tail.splitlines())
