"""The app's own seed loader (`python -m app.seed FILE`, run without the harness) refuses what the harness's
seed check refuses: duplicates, unknown keys, members who are not seeded users."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from app.seed import SeedFile

ROOT = Path(__file__).resolve().parents[3]
SHIPPED: dict[str, Any] = yaml.safe_load((ROOT / "seed" / "seed.yaml").read_text())


def test_the_shipped_seed_loads() -> None:
    assert SeedFile.model_validate(SHIPPED).tenants


def _changed(change: Any) -> dict[str, Any]:
    seed = copy.deepcopy(SHIPPED)
    change(seed)
    return seed


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["tenants"].append(copy.deepcopy(s["tenants"][0])), "tenant"),
        (lambda s: s["users"].append({**s["users"][0], "email": s["users"][0]["email"].upper()}), "user"),
        (lambda s: s["tenants"][0]["members"].append(dict(s["tenants"][0]["members"][0])), "member"),
        (lambda s: s["tenants"][0]["catalog"].append(dict(s["tenants"][0]["catalog"][0])), "SKU"),
        (lambda s: s["tenants"][0].update(colour="red"), "Extra inputs are not permitted"),
        (
            lambda s: s["tenants"][0]["members"].append({"email": "nobody@x.test", "role": "member"}),
            "not under users",
        ),
    ],
    ids=[
        "tenant twice",
        "user twice (case)",
        "member twice",
        "sku twice",
        "unknown key",
        "member not a user",
    ],
)
def test_what_the_harness_refuses_the_app_refuses(change: Any, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        SeedFile.model_validate(_changed(change))
