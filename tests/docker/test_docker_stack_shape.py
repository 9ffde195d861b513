"""The embedded tier's provisioning assertions (tests/integration/test_stack_shape.py), run unchanged against the
Docker tier: same roles and grants, Redis ACL users, bucket rules, SES, Cognito policy, secrets/parameters."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.docker]

_SOURCE = Path(__file__).resolve().parents[1] / "integration" / "test_stack_shape.py"
_spec = importlib.util.spec_from_file_location("embedded_stack_shape", _SOURCE)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

# Each test function, collected here too; its `stack` fixture resolves to tests/docker/conftest.py's.
globals().update({name: value for name, value in vars(_module).items() if name.startswith("test_")})
