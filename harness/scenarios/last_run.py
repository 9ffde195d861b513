"""The last run's report per scenario file, kept in the local stack's state dir for the web console.

`save_last_run` writes `<state>/scenario-reports/<file>.json` after each local run (pass or fail): the
scenario, pass/fail, the step map (label, file:line, status) and the timings, every message masked like the
failure report. The console's Scenarios page (`harness/webconsole/views.py: scenario_reports`) reads them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.scenarios.report import Masker, ScenarioReport

REPORT_DIR = "scenario-reports"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def save_last_run(
    folder: Path, report: ScenarioReport, masker: Masker, timings: Mapping[str, float], started: datetime
) -> Path:
    """Write this run's report as the last one of its scenario file; returns the file written."""
    failed_at = report.failed_step.number if report.failed_step else None
    problem = (
        report.setup_error or report.error or ("; ".join(report.failure.problems) if report.failure else None)
    )
    document: dict[str, Any] = {
        "file": report.source,
        "scenario": report.scenario,
        "target": report.target,
        "run_id": report.run_id,
        "passed": not report.failed,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "seconds": sum(timings.values()),
        "timings": dict(timings),
        "error": masker.text(problem) if problem else None,
        "findings": [masker.text(str(f)) for f in report.findings],
        "steps": [
            {
                "number": s.number,
                "name": masker.text(s.label),
                "where": s.where,
                "status": s.status,
                "ok": s.status in ("passed", "skipped"),
                "error": masker.text(problem) if problem and s.number == failed_at else None,
            }
            for s in report.steps
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (_UNSAFE.sub("_", report.source.strip("/")) + ".json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str))
    os.replace(tmp, path)
    return path
