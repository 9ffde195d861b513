"""The built-in scenario step kinds, one module each; importing this package registers them, in the order of
`BUILTIN` (the order error messages and docs list them in). A new kind is one more module: see
harness/scenarios/registry.py and docs/scenarios.md, "Adding a step kind or probe"."""

from __future__ import annotations

import importlib

BUILTIN = (
    "request",
    "fetch",
    "upload",
    "sign_in",
    "set_vars",
    "expect_email",
    "expect_object",
    "expect_rows",
    "expect_redis",
    "expect_task",
)

for _module in BUILTIN:
    importlib.import_module(f"{__name__}.{_module}")
