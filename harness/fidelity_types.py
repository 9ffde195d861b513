"""`Behaviour`, one row of the fidelity ledger (harness/fidelity.py, which re-exports it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    """One AWS behaviour the project relies on.

    `id`: stable name scenarios refer to. `aws`: what AWS does. `reproduced_locally`: whether the emulator does
    the same. `tests`: pytest node ids proving it (or, when not reproduced, pinning the divergence). `check`: the
    emulator switch (`python -m harness.emulator --fidelity-off CHECK`) that turns it off, if any. `note`: caveats.
    `scenarios`: scenario files that depend on it (from `SCENARIO_DEPENDENCIES`).
    """

    id: str
    service: str
    aws: str
    reproduced_locally: bool
    tests: tuple[str, ...]
    check: str | None = None
    note: str = ""
    scenarios: tuple[str, ...] = ()
