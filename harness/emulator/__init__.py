"""The harness's AWS emulator: moto's every service on one port, as our own process.

On top of moto's server it adds state that survives restarts (a pickled snapshot, restored at start, written
shortly after every change and on SIGTERM/SIGINT), `/_harness/` control endpoints (health, snapshot, reset,
captured SES mail), and one place (`build_wsgi_app`) where middlewares wrap moto's handlers.

Run it with `python -m harness.emulator --help`. Importing this package does not import moto.
"""

from __future__ import annotations

from harness.emulator.config import DEFAULT_ACCOUNT_ID, DEFAULT_PORT, DEFAULT_REGION, EmulatorConfig

__all__ = ["DEFAULT_ACCOUNT_ID", "DEFAULT_PORT", "DEFAULT_REGION", "EmulatorConfig"]
