"""The env-contract drift check: what the app will be given on AWS vs what the target account has.

Run before anything is applied. It refuses (with the list) when:
- an env-contract key the app reads has no secret or parameter in the topology (`uncovered`);
- a secret or parameter the stack already manages is gone from the account (`missing`: deleted out of band,
  CloudFormation would not notice and the tasks would fail to start);
- a secret or parameter the stack is about to create already exists outside it (`conflicts`: the create would
  fail halfway through the deploy).
Names only: no value is ever read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from harness.deploy.template import Template
from harness.envcontract import CONTRACT_KEYS
from harness.errors import DeployError
from harness.topology import Topology

# Contract keys that are not secrets or parameters on AWS: set as plain task environment, or absent on purpose
# (credentials come from the task role, and there is no endpoint override).
PLAIN_ON_AWS = frozenset(
    {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "API_URL"}
)
SECRET_TYPE = "AWS::SecretsManager::Secret"
PARAMETER_TYPE = "AWS::SSM::Parameter"


@dataclass
class DriftReport:
    uncovered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.uncovered or self.missing or self.conflicts)

    def render(self) -> str:
        lines = [f"env contract: {self.checked} secret/parameter names checked"]
        for title, items in (
            (
                "keys the app reads that nothing provides (add a [[secrets]] or [[parameters]] entry)",
                self.uncovered,
            ),
            (
                "managed by the stack but missing in the account (restore them, or delete and redeploy)",
                self.missing,
            ),
            (
                "exist outside the stack, which would fail to create them (delete or import them)",
                self.conflicts,
            ),
        ):
            if items:
                lines.append(f"  {title}:")
                lines += [f"    - {item}" for item in items]
        return "\n".join(lines)


def contract_names(template: Template) -> dict[str, tuple[str, str]]:
    """Secret/parameter name -> (logical id, kind) for every one the app stack creates."""
    names: dict[str, tuple[str, str]] = {}
    for logical_id, resource in template.resources.items():
        kind = resource["Type"]
        if kind in (SECRET_TYPE, PARAMETER_TYPE):
            names[str(resource["Properties"]["Name"])] = (
                logical_id,
                "secret" if kind == SECRET_TYPE else "parameter",
            )
    return names


def check_env_contract(
    topology: Topology,
    template: Template,
    *,
    secretsmanager: Any,
    ssm: Any,
    stack_resources: Iterable[str] | None,
) -> DriftReport:
    """Compare the env contract with the account. `stack_resources`: logical ids the stack has now (None: no stack)."""
    report = DriftReport()
    provided = set(topology.env_keys())
    report.uncovered = sorted(k for k in CONTRACT_KEYS if k not in PLAIN_ON_AWS and k not in provided)
    expected = contract_names(template)
    report.checked = len(expected)
    in_stack = set(stack_resources or ())
    present = _existing_secrets(secretsmanager, [n for n, (_, k) in expected.items() if k == "secret"])
    present |= _existing_parameters(ssm, [n for n, (_, k) in expected.items() if k == "parameter"])
    env_of = {s.name: s.env for s in topology.secrets} | {p.name: p.env for p in topology.parameters}
    for name, (logical_id, kind) in sorted(expected.items()):
        label = f"{kind} {name}" + (f" ({env_of[name]})" if name in env_of else "")
        if logical_id in in_stack and name not in present:
            report.missing.append(label)
        elif logical_id not in in_stack and name in present:
            report.conflicts.append(label)
    return report


def _existing_secrets(client: Any, names: list[str]) -> set[str]:
    wanted, found = set(names), set()
    try:
        for page in client.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 100}):
            found |= {
                s["Name"]
                for s in page.get("SecretList", [])
                if s["Name"] in wanted and not s.get("DeletedDate")
            }
    except ClientError as exc:
        raise DeployError(f"drift check: cannot list Secrets Manager secrets: {exc}") from exc
    return found


def _existing_parameters(client: Any, names: list[str]) -> set[str]:
    found: set[str] = set()
    try:
        for start in range(0, len(names), 10):  # GetParameters takes 10 names at a time
            # WithDecryption=False and only the names are kept: values never leave this function.
            answer = client.get_parameters(Names=names[start : start + 10], WithDecryption=False)
            found |= {p["Name"] for p in answer.get("Parameters", [])}
    except ClientError as exc:
        raise DeployError(f"drift check: cannot read SSM parameters: {exc}") from exc
    return found
