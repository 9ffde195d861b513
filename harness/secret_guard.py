"""Secrets the test process knows, and the check that none of them reaches a test's report.

Everything that hands a test a secret registers it here: the stack's passwords and keys (`RunningStack`),
a target's client secret and app key (`Target`), each actor's password, tokens and invite tokens
(`ActorFactory`), and private signing keys fetched from the emulator. The pytest plugin screens every
report (`screen_report`, from `pytest_runtest_makereport`): a test whose traceback or captured output holds
one of these values fails, and the value is replaced by `***` before pytest prints or stores the report
(terminal, JUnit XML). Reprs the harness defines keep secrets out in the first place (`field(repr=False)`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
MIN_LENGTH = 8  # shorter values ("test", a port) would match ordinary text

_lock = threading.Lock()
_known: dict[str, str] = {}  # value -> what it is ("the password of actor acme.owner")


def remember(value: str | None, label: str = "a secret") -> None:
    """Register a secret value (ignored when shorter than MIN_LENGTH)."""
    if value and len(value) >= MIN_LENGTH:
        with _lock:
            _known.setdefault(value, label)


def remember_all(values: Mapping[str, str | None] | Iterable[str | None], label: str = "a secret") -> None:
    if isinstance(values, Mapping):
        for name, value in values.items():
            remember(value, name)
    else:
        for value in values:
            remember(value, label)


def forget_all() -> None:
    """Forget every registered value (tests of this module)."""
    with _lock:
        _known.clear()


def found_in(text: str) -> list[str]:
    """The labels of the registered secrets that occur in `text` (never the values)."""
    with _lock:
        known = dict(_known)
    return sorted({label for value, label in known.items() if value in text})


def redact(text: str) -> str:
    with _lock:
        values = sorted(_known, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def screen_report(report: Any) -> list[str]:
    """Fail and redact a pytest TestReport whose longrepr or captured sections hold a registered secret.
    Returns the labels found (empty: the report is left as it was)."""
    longrepr = report.longreprtext if report.longrepr is not None else ""
    sections = list(getattr(report, "sections", []))
    labels = found_in("\n".join([longrepr, *(content for _, content in sections)]))
    if not labels:
        return []
    where = [name for name, content in sections if found_in(content)]
    if found_in(longrepr):
        where.insert(0, "the failure report")
    report.outcome = "failed"
    report.longrepr = (
        f"harness secret guard: {', '.join(where)} of this test showed {', '.join(labels)}; the values are "
        f"replaced by {MASK} below. Keep secrets out of output and reprs (field(repr=False), the scenario "
        f"Masker), or print something derived from them instead.\n\n{redact(longrepr)}"
    )
    report.sections = [(name, redact(content)) for name, content in sections]
    return labels
