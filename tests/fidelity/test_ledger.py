"""The fidelity ledger (harness/fidelity.py): every behaviour has tests that exist, every emulator check is
accounted for, declared scenarios exist, and docs/fidelity.md is generated from it."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from harness import fidelity
from harness.emulator.fidelity import CHECKS
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]


@cache
def defined_tests(path: str) -> frozenset[str]:
    file = ROOT / path
    if not file.exists():
        return frozenset()
    tree = ast.parse(file.read_text())
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    )


def missing_tests(rows: tuple[fidelity.Behaviour, ...]) -> list[str]:
    missing = []
    for row in rows:
        if not row.tests:
            missing.append(f"{row.id}: no test listed")
        for node_id in row.tests:
            path, _, name = node_id.partition("::")
            if re.sub(r"\[.*\]$", "", name) not in defined_tests(path):
                missing.append(f"{row.id}: {node_id} does not exist")
    return missing


def test_every_behaviour_names_tests_that_exist() -> None:
    assert missing_tests(fidelity.behaviours()) == []


def test_a_behaviour_without_an_existing_test_is_caught() -> None:
    untested = fidelity.Behaviour(
        "x.y", "S3", "something", True, ("tests/fidelity/test_s3_presigned.py::test_nope",)
    )
    assert missing_tests((untested,)) == [
        "x.y: tests/fidelity/test_s3_presigned.py::test_nope does not exist"
    ]
    assert missing_tests((fidelity.Behaviour("x.z", "S3", "something", True, ()),)) == ["x.z: no test listed"]


def test_ids_are_unique_and_every_emulator_check_has_a_behaviour() -> None:
    ids = [row.id for row in fidelity.behaviours()]
    assert len(ids) == len(set(ids))
    assert {row.check for row in fidelity.behaviours() if row.check} == set(CHECKS)


def test_declared_scenarios_exist_and_name_known_behaviours() -> None:
    known = {row.id for row in fidelity.behaviours()}
    for scenario, ids in fidelity.scenario_dependencies().items():
        assert (ROOT / scenario).exists(), scenario
        assert set(ids) <= known, scenario
    on_disk = {f"scenarios/{p.name}" for p in (ROOT / "scenarios").glob("*.yaml")}
    assert on_disk <= set(fidelity.scenario_dependencies()), "declare the new scenarios' dependencies"


def test_the_api_other_parts_read() -> None:
    unproven = {row.id for row in fidelity.unproven_locally()}
    assert unproven == {row.id for row in fidelity.behaviours() if not row.reproduced_locally}
    assert "s3.header-signed-requests" in unproven
    assert fidelity.unproven_locally(["cognito.secret-hash", "s3.presigned-url-expiry"]) == ()
    assert "scenarios/media.yaml" in fidelity.behaviour("s3.post-policy-conditions").scenarios
    with pytest.raises(HarnessError, match=re.escape("no behaviour 'cognito.nope'")):
        fidelity.behaviour("cognito.nope")


def test_docs_fidelity_md_is_generated_from_the_ledger() -> None:
    doc = ROOT / fidelity.DOC_PATH
    assert doc.read_text() == fidelity.render_markdown(), (
        "run `python -m harness.fidelity > docs/fidelity.md`"
    )
    for row in fidelity.behaviours():
        assert f"`{row.id}`" in doc.read_text()
