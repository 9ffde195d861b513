"""`python -m harness.webconsole.celery_inspect APP`: the worker's active, reserved and scheduled tasks as a
JSON list on stdout, through Celery's own inspect API (run by the console with the worker's env contract, so
it talks to the broker exactly as the worker does)."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

INSPECT_TIMEOUT = 1.5


def load_app(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attr or "app", None) or loaded.celery_app


def inspect(spec: str) -> list[dict[str, Any]]:
    app = load_app(spec)
    inspector = app.control.inspect(timeout=INSPECT_TIMEOUT)
    found: list[dict[str, Any]] = []
    for state, answer in (
        ("active", inspector.active()),
        ("reserved", inspector.reserved()),
        ("scheduled", inspector.scheduled()),
    ):
        for worker, entries in (answer or {}).items():
            for entry in entries or []:
                request = entry.get("request", entry)  # scheduled entries wrap the request
                found.append(
                    {
                        "state": state,
                        "worker": worker,
                        "id": request.get("id"),
                        "name": request.get("name"),
                        "args": request.get("args"),
                        "kwargs": request.get("kwargs"),
                        "eta": entry.get("eta"),
                        "started": request.get("time_start"),
                    }
                )
    return found


def main() -> None:
    json.dump(inspect(sys.argv[1]), sys.stdout, default=str)


if __name__ == "__main__":
    main()
