"""A CloudFormation template under construction, and the intrinsic functions as small typed helpers.

`Template.to_json()` is the one serialisation: keys sorted, two-space indent, trailing newline, so the same
topology always renders byte-identical text (the rendered file is reviewed and diffed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from harness.errors import DeployError

Json = Any  # a JSON value: the template's nodes are plain dicts, lists, strings, numbers and booleans

_LOGICAL_ID = re.compile(r"^[A-Za-z0-9]{1,255}$")
FORMAT_VERSION = "2010-09-09"


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str, variables: dict[str, Json] | None = None) -> dict[str, Json]:
    return {"Fn::Sub": [text, variables] if variables else text}


def join(delimiter: str, values: list[Json]) -> dict[str, Json]:
    return {"Fn::Join": [delimiter, values]}


def select_az(index: int) -> dict[str, Json]:
    return {"Fn::Select": [index, {"Fn::GetAZs": ""}]}


def if_(condition: str, then: Json, otherwise: Json) -> dict[str, Json]:
    return {"Fn::If": [condition, then, otherwise]}


NO_VALUE = ref("AWS::NoValue")


def pascal(*words: str) -> str:
    """`pascal("app_user", "password")` -> `AppUserPassword` (logical ids are alphanumeric)."""
    parts: list[str] = []
    for word in words:
        parts += [p for p in re.split(r"[^A-Za-z0-9]+", word) if p]
    return "".join(p[:1].upper() + p[1:] for p in parts)


@dataclass
class Template:
    """Resources, parameters, conditions and outputs; adding the same logical id twice is a bug."""

    description: str
    parameters: dict[str, dict[str, Json]] = field(default_factory=dict)
    conditions: dict[str, Json] = field(default_factory=dict)
    resources: dict[str, dict[str, Json]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Json]] = field(default_factory=dict)
    metadata: dict[str, Json] = field(default_factory=dict)

    def add(
        self,
        logical_id: str,
        resource_type: str,
        properties: dict[str, Json],
        *,
        depends_on: list[str] | None = None,
        condition: str | None = None,
        deletion_policy: str | None = None,
    ) -> str:
        """Add a resource and return its logical id (so callers can `ref()` it)."""
        self._check_id(logical_id, self.resources, "resource")
        resource: dict[str, Json] = {"Type": resource_type, "Properties": properties}
        if depends_on:
            resource["DependsOn"] = sorted(depends_on)
        if condition:
            resource["Condition"] = condition
        if deletion_policy:
            resource["DeletionPolicy"] = deletion_policy
            resource["UpdateReplacePolicy"] = deletion_policy
        self.resources[logical_id] = resource
        return logical_id

    def parameter(self, name: str, description: str, default: str | None = None, **extra: Json) -> str:
        self._check_id(name, self.parameters, "parameter")
        param: dict[str, Json] = {"Type": "String", "Description": description, **extra}
        if default is not None:
            param["Default"] = default
        self.parameters[name] = param
        return name

    def condition(self, name: str, expression: Json) -> str:
        self._check_id(name, self.conditions, "condition")
        self.conditions[name] = expression
        return name

    def output(self, name: str, value: Json, description: str, *, condition: str | None = None) -> None:
        self._check_id(name, self.outputs, "output")
        out: dict[str, Json] = {"Description": description, "Value": value}
        if condition:
            out["Condition"] = condition
        self.outputs[name] = out

    def as_dict(self) -> dict[str, Json]:
        body: dict[str, Json] = {"AWSTemplateFormatVersion": FORMAT_VERSION, "Description": self.description}
        for key, value in (
            ("Metadata", self.metadata),
            ("Parameters", self.parameters),
            ("Conditions", self.conditions),
            ("Resources", self.resources),
            ("Outputs", self.outputs),
        ):
            if value:
                body[key] = value
        return body

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def resource_types(self) -> dict[str, str]:
        return {logical_id: str(r["Type"]) for logical_id, r in self.resources.items()}

    @staticmethod
    def _check_id(name: str, table: dict[str, Any], kind: str) -> None:
        if not _LOGICAL_ID.match(name):
            raise DeployError(f"internal: {kind} id {name!r} is not alphanumeric")
        if name in table:
            raise DeployError(f"internal: {kind} {name!r} is rendered twice")
