"""What one load process counts beside Locust's request stats: emails, rate-limited requests, probe samples.

Each Locust user reports its steps to Locust as request events (so Locust's runners aggregate latency and
failures across workers); the counts here travel to the master with Locust's `report_to_master` /
`worker_report` events and are summed there.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from harness.scenarios.loader import PlannedStep
from harness.scenarios.runner import StepEvent

SETUP = "setup"  # Locust request_type of a run's fresh tenants and actors, and of their cleanup
CLEANUP = "cleanup"
RATE_LIMITED = "rate-limited"  # request_type of a step answered 429 that did not expect it


def is_probe(planned: PlannedStep) -> bool:
    """Steps that read side effects (mail, objects, rows, keys, tasks) rather than act as a user."""
    return planned.kind.startswith("expect_")


def step_name(file_stem: str, planned: PlannedStep) -> str:
    """How a step is named in the stats: `orders#3 the buyer orders two — POST /api/v1/orders as acme.buyer`."""
    return f"{file_stem}#{planned.index + 1} {planned.label}"[:200]


@dataclass
class Counts:
    emails_expected: int = 0
    emails_delivered: int = 0
    email_delays_ms: list[float] = field(default_factory=list)
    rate_limited: int = 0
    probes_sampled: int = 0
    probes_skipped: int = 0
    iterations: int = 0
    iterations_failed: int = 0
    failures: list[str] = field(default_factory=list)  # the first few failed iterations' reasons (masked)

    def add(self, other: dict[str, Any]) -> None:
        for name, value in other.items():
            mine = getattr(self, name)
            if isinstance(mine, list):
                room = 20 - len(mine) if name == "failures" else len(value)
                mine.extend(value[: max(room, 0)])
            else:
                setattr(self, name, mine + value)

    def take(self) -> dict[str, Any]:
        """Everything counted since the last `take` (what a worker sends to the master), reset to zero."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        self.__init__()  # type: ignore[misc]
        return data


class Collector:
    """The process's counts; thread- (and greenlet-) safe."""

    def __init__(self, sample: float, seed: int | None = None) -> None:
        self.sample = sample
        self.counts = Counts()
        self.draining = False  # set at the end of the run: users start no new scenario run
        self.in_flight = 0  # scenario runs under way in this process
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def sampled(self, planned: PlannedStep) -> bool:
        """Every user step runs; a probe runs on a sample of iterations, or always when it saves a value."""
        if not is_probe(planned):
            return True
        keep = bool(planned.step.save) or self._random.random() < self.sample
        with self._lock:
            if keep:
                self.counts.probes_sampled += 1
            else:
                self.counts.probes_skipped += 1
        return keep

    def step(self, event: StepEvent) -> None:
        if event.planned.kind != "expect_email":
            if event.failure is not None and event.status == 429:
                with self._lock:
                    self.counts.rate_limited += 1
            return
        with self._lock:
            self.counts.emails_expected += 1
            if event.failure is None:
                self.counts.emails_delivered += 1
                self.counts.email_delays_ms.append(event.seconds * 1000)

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def iteration(self, failure: str | None) -> None:
        with self._lock:
            self.in_flight -= 1
            self.counts.iterations += 1
            if failure is not None:
                self.counts.iterations_failed += 1
                if len(self.counts.failures) < 20:
                    self.counts.failures.append(failure)

    def take(self) -> dict[str, Any]:
        with self._lock:
            return self.counts.take()
