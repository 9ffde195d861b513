"""What a plan changes, property by property: `DesiredCount: 2 → 3`.

The values come from the change set where CloudFormation gives them (`Details[].Target.BeforeValue` /
`AfterValue`); otherwise from the previous template of the stack, with its parameters filled in on both sides
(so a new image tag shows as the task definition's `Image` changing). Values of secret-looking properties are
redacted, and every value passes through `redact()`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.deploy.redact import redact

if TYPE_CHECKING:
    from harness.deploy.deployer import DeployReport
    from harness.topology import Topology

REDACTED = "***"
# A property whose name says it holds a secret value (not an ARN or a reference to one).
_SECRET_NAME = re.compile(r"(?i)(password|secretstring|privatekey|authtoken|^secret$|token$)")
_SUB_PARAM = re.compile(r"\$\{([A-Za-z0-9]+)\}")


@dataclass(frozen=True)
class PropertyChange:
    path: str  # dotted, list items by index: ContainerDefinitions[0].Image
    old: Any
    new: Any

    def line(self) -> str:
        return f"{self.path}: {_show(self.old)} → {_show(self.new)}"

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 120 else text[:117] + "..."


def fill_parameters(value: Any, parameters: Mapping[str, str]) -> Any:
    """`value` with `Ref` to a template parameter, and `${Param}` inside `Fn::Sub`, replaced by its value."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            body = value["Fn::Sub"]
            if isinstance(body, str):
                filled = _SUB_PARAM.sub(lambda m: parameters.get(m.group(1), m.group(0)), body)
                return filled if "${" not in filled else {"Fn::Sub": filled}  # fully known: a plain value
        return {k: fill_parameters(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_parameters(v, parameters) for v in value]
    return value


def property_changes(old: Any, new: Any, path: str = "") -> list[PropertyChange]:
    """Leaf-level differences between two property trees (dicts by key, lists by index)."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[PropertyChange] = []
        for key in sorted(set(old) | set(new)):
            changes += property_changes(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return changes
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            c
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for c in property_changes(a, b, f"{path}[{i}]")
        ]
    if old == new:
        return []
    return [_redacted(PropertyChange(path, old, new))]


def _redacted(change: PropertyChange) -> PropertyChange:
    leaf = re.sub(r"\[\d+\]$", "", change.path).rsplit(".", 1)[-1]
    if _SECRET_NAME.search(leaf):
        return PropertyChange(change.path, REDACTED if change.old is not None else None,
                              REDACTED if change.new is not None else None)  # fmt: skip
    return PropertyChange(change.path, _redact_value(change.old), _redact_value(change.new))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True)
        cleaned = redact(text)
        return value if cleaned == text else json.loads(cleaned) if _is_json(cleaned) else REDACTED
    return value


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def resource_property_changes(
    old_template: Mapping[str, Any],
    old_parameters: Mapping[str, str],
    new_template: Mapping[str, Any],
    new_parameters: Mapping[str, str],
    logical_id: str,
) -> list[PropertyChange]:
    """What changed in one resource's Properties between the deployed template and the new one."""
    old = old_template.get("Resources", {}).get(logical_id, {}).get("Properties", {})
    new = new_template.get("Resources", {}).get(logical_id, {}).get("Properties", {})
    return property_changes(fill_parameters(old, old_parameters), fill_parameters(new, new_parameters))


def change_set_property_changes(details: list[Mapping[str, Any]]) -> list[PropertyChange]:
    """Before/after values where the change set gives them (CloudFormation with property values)."""
    changes = []
    for detail in details:
        target = detail.get("Target", {})
        if "BeforeValue" not in target and "AfterValue" not in target:
            continue
        path = str(target.get("Path") or target.get("Name") or "").strip("/").replace("/", ".")
        changes.append(_redacted(PropertyChange(path, target.get("BeforeValue"), target.get("AfterValue"))))
    return changes


def plan_json(report: DeployReport, topology: Topology) -> dict[str, Any]:
    """The plan for CI: `{"stacks": [{stack, action, summary, changes: [{logical_id, type, action,
    replacement, properties: [{path, old, new}], usd_month_delta}]}], drift, release, cost_delta_usd_month}`."""
    stacks = []
    total = 0.0
    for plan in report.plans:
        changes = []
        for change in plan.changes:
            total += change.usd_month_delta
            changes.append(
                {
                    "logical_id": change.logical_id,
                    "type": change.resource_type,
                    "action": change.action,
                    "replacement": change.replacement,
                    "properties": [p.as_json() for p in change.properties],
                    "usd_month_delta": round(change.usd_month_delta, 2),
                }
            )
        stacks.append(
            {
                "stack": plan.stack,
                "action": "create" if plan.create else "update",
                "summary": plan.summary(),
                "changes": changes,
            }
        )
    drift = report.drift
    return {
        "env": topology.env,
        "stacks": stacks,
        "noop": report.noop,
        "cost_delta_usd_month": round(total, 2),
        "drift": None if drift is None else {"ok": drift.ok, "report": drift.render()},
        "release": None
        if report.release is None
        else {
            "id": report.release.id,
            "image_tag": report.release.image_tag,
            "gate": report.record.gate if report.record else None,
        },
        "running_release": None if report.latest is None else report.latest.as_json(),
    }


def cost_delta_line(change: Any) -> str:
    """`+$19.84/mo: BackendService DesiredCount 2 → 3` (change: a cloudformation.ResourceChange)."""
    delta = change.usd_month_delta
    what = ", ".join(f"{p.path} {_show(p.old)} → {_show(p.new)}" for p in change.properties[:3])
    return f"{'+' if delta > 0 else '-'}${abs(delta):,.2f}/mo: {change.logical_id}" + (
        f" {what}" if what else ""
    )


def annotate_changes(
    changes: list[Any],
    old_template: Mapping[str, Any],
    old_parameters: Mapping[str, str],
    new_template: Mapping[str, Any],
    new_parameters: Mapping[str, str],
    *,
    region: str,
) -> list[Any]:
    """Each change with its changed properties (old → new) and its monthly cost delta."""
    import dataclasses

    from harness.deploy.costs import price_table, template_costs

    prices = price_table(region)

    def per_resource(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for cost in template_costs(fill_parameters(dict(template), parameters), prices=prices):
            lid = cost.logical_id.split(".", 1)[0]
            totals[lid] = totals.get(lid, 0.0) + cost.usd_month
        return totals

    old_costs = per_resource(old_template, old_parameters) if old_template else {}
    new_costs = per_resource(new_template, new_parameters)
    annotated = []
    for change in changes:
        properties = change_set_property_changes(list(change.raw_details))
        if not properties and change.action == "Modify":
            properties = resource_property_changes(
                old_template, old_parameters, new_template, new_parameters, change.logical_id
            )
        delta = new_costs.get(change.logical_id, 0.0) - old_costs.get(change.logical_id, 0.0)
        annotated.append(dataclasses.replace(change, properties=tuple(properties), usd_month_delta=delta))
    return annotated
