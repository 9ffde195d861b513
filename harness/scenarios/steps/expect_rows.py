"""`expect_rows:`: a read-only query as app_user, in the tenant's RLS context (local only)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field, field_validator

from harness.scenarios import registry
from harness.scenarios.execute import Attempt, StepContext, finish, poll
from harness.scenarios.fields import Name, ProbeSpec, StepModel
from harness.scenarios.matchers import Expected, show
from harness.scenarios.paths import Missing
from harness.scenarios.registry import CheckScope, Need, Problem
from harness.scenarios.targets import Capability


class RowsProbe(ProbeSpec):
    tenant: Name = Field(description="the RLS context: app.tenant_id is set to this tenant's id")
    sql: str = Field(description="a read-only query; parameters as %(name)s")
    params: dict[str, Any] = {}
    count: Expected = None
    rows: list[dict[str, Expected]] | None = None
    first: dict[str, Expected] | None = None

    @field_validator("sql")
    @classmethod
    def _select(cls, sql: str) -> str:
        if not re.match(r"\s*(select|with)\b", sql, re.IGNORECASE):
            raise ValueError(
                "must be a SELECT (or WITH ... SELECT) query; it runs in a read-only transaction"
            )
        return sql


class RowsStep(StepModel):
    expect_rows: RowsProbe


def run(context: StepContext, step: RowsStep) -> dict[str, Any]:
    spec = step.expect_rows
    database = context.target.database
    assert database is not None
    tenant = context.tenants[spec.tenant]
    params = context.value(spec.params)

    def attempt() -> Attempt:
        rows = database.query(tenant.id, spec.sql, params)
        problems: list[str] = []
        if "count" in spec.model_fields_set:
            problems += [f"count: {p}" for p in context.check(spec.count, len(rows))]
        if spec.rows is not None:
            if len(rows) != len(spec.rows):
                problems.append(f"rows: expected {len(spec.rows)} row(s), got {len(rows)}")
            for i, (expected, row) in enumerate(zip(spec.rows, rows, strict=False)):
                problems += _columns(context, f"rows[{i}]", expected, row)
        if spec.first is not None:
            if not rows:
                problems.append("first: the query returned no rows")
            else:
                problems += _columns(context, "first", spec.first, rows[0])
        observed = "\n".join(show(r, 400) for r in rows[:10]) or "no rows"
        return Attempt(
            problems,
            {"rows": rows, "count": len(rows), "first": rows[0] if rows else None},
            observed=observed,
        )

    return finish(*poll(attempt, spec.within))


def _columns(
    context: StepContext, where: str, expected: Mapping[str, Any], row: Mapping[str, Any]
) -> list[str]:
    problems: list[str] = []
    for column, value in expected.items():
        actual = (
            row[column]
            if column in row
            else Missing((), f"there is no column {column!r} (columns: {', '.join(row)})")
        )
        problems += [f"{where}.{column}: {p}" for p in context.check(value, actual)]
    return problems


def needs(step: RowsStep) -> Iterable[Need]:
    yield Capability.DATABASE, ("expect_rows",)


def describe(step: RowsStep) -> str:
    return f"expect_rows as {step.expect_rows.tenant}"


def check_step(step: RowsStep, scope: CheckScope) -> Iterable[Problem]:
    yield from scope.tenant(step.expect_rows.tenant, ("expect_rows", "tenant"))


KIND = registry.register(
    registry.StepKind(
        "expect_rows",
        RowsStep,
        run,
        save_roots=("rows", "count", "first"),
        probe=True,
        needs=needs,
        describe=describe,
        check=check_step,
    )
)
