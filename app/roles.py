"""Tenant roles and the slug shape: plain values, importable without the web stack (the seed uses them)."""

from __future__ import annotations

import re
from typing import Literal

Role = Literal["owner", "admin", "member"]
ROLE_RANK: dict[str, int] = {"member": 1, "admin": 2, "owner": 3}

SLUG_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
