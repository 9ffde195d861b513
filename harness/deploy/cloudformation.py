"""One CloudFormation stack: read it, plan a change set, execute it with progress, report failures.

The change-set states and the stack-event vocabulary are CloudFormation's own; nothing here knows about the
emulator. Progress goes through a callback (the CLI prints it), never through a logger that could be shipped
elsewhere, and every message from AWS passes through `redact()` first.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from harness.deploy.plandiff import PropertyChange, cost_delta_line
from harness.deploy.redact import redact
from harness.deploy.template import Template
from harness.errors import DeployError
from harness.readiness import NotYet, WaitTimeout, wait_for

Progress = Callable[[str], None]
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation accepts inline; larger templates go through S3
POLL_SECONDS = 2.0
CHANGE_SET_TIMEOUT = 600.0
STACK_TIMEOUT = 3 * 3600.0  # RDS Multi-AZ + CloudFront on a first deploy take tens of minutes
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
IN_PROGRESS = "_IN_PROGRESS"
GOOD_END = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
ROLLED_BACK = {"ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED"}


@dataclass(frozen=True)
class ResourceChange:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""  # True | False | Conditional (real CloudFormation only)
    details: tuple[str, ...] = ()  # changed property names
    properties: tuple[PropertyChange, ...] = ()  # old -> new, secrets redacted (harness/deploy/plandiff.py)
    usd_month_delta: float = 0.0  # what the change adds to (or takes off) the monthly cost estimate
    raw_details: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)

    def lines(self) -> list[str]:
        """The resource's line, then one line per changed property and one for its cost delta."""
        lines = [self.line(), *(f"      {p.line()}" for p in self.properties)]
        if abs(self.usd_month_delta) >= 0.005 and self.action == "Modify":
            lines.append(f"      {cost_delta_line(self)}")
        return lines

    def line(self) -> str:
        mark = {"Add": "+", "Remove": "-", "Modify": "~"}.get(self.action, "?")
        extra = []
        if self.replacement in ("True", "Conditional"):
            extra.append("REPLACEMENT" if self.replacement == "True" else "may replace")
        if self.details:
            extra.append("props: " + ", ".join(self.details))
        suffix = f"  ({'; '.join(extra)})" if extra else ""
        return f"  {mark} {self.logical_id:<36} {self.resource_type}{suffix}"


@dataclass(frozen=True)
class StackState:
    name: str
    status: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    stack_id: str

    @property
    def usable(self) -> bool:
        """A stack an update can start from (a stack that never finished creating cannot be updated)."""
        return self.status in GOOD_END or self.status == "UPDATE_ROLLBACK_COMPLETE"


@dataclass
class ChangeSetPlan:
    stack: str
    create: bool
    changes: list[ResourceChange] = field(default_factory=list)
    change_set_id: str | None = None
    no_changes: bool = False

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.action] = counts.get(change.action, 0) + 1
        parts = [f"{n} to {a.lower()}" for a, n in sorted(counts.items())]
        return ", ".join(parts) if parts else "no changes"

    def render(self) -> str:
        head = f"stack {self.stack}: " + ("create" if self.create else "update") + f" — {self.summary()}"
        lines = [head, *(line for c in sorted(self.changes, key=_order) for line in c.lines())]
        delta = sum(c.usd_month_delta for c in self.changes)
        if abs(delta) >= 0.005:
            lines.append(
                f"  monthly cost {'+' if delta > 0 else '-'}${abs(delta):,.2f}/mo (estimate: harness cost)"
            )
        return "\n".join(lines)


def _order(change: ResourceChange) -> tuple[int, str]:
    return ({"Remove": 0, "Modify": 1, "Add": 2}.get(change.action, 3), change.logical_id)


class StackFailed(DeployError):
    """A stack operation ended badly; `failures` are (logical id, type, reason) of the failing resources."""

    def __init__(
        self, message: str, failures: list[tuple[str, str, str]], *, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.failures = failures


class CloudFormationStack:
    """Operations on one named stack in one region."""

    def __init__(
        self, client: Any, name: str, *, s3: Any = None, artifacts_bucket: str | None = None
    ) -> None:
        self.client = client
        self.name = name
        self.s3 = s3
        self.artifacts_bucket = artifacts_bucket

    def state(self) -> StackState | None:
        try:
            stacks = self.client.describe_stacks(StackName=self.name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise _aws_error(f"describe stack {self.name}", exc) from exc
        stack = stacks[0]
        if stack["StackStatus"] == "REVIEW_IN_PROGRESS":
            return StackState(self.name, "REVIEW_IN_PROGRESS", {}, {}, stack["StackId"])
        return StackState(
            name=self.name,
            status=stack["StackStatus"],
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
            outputs={o["OutputKey"]: str(o.get("OutputValue", "")) for o in stack.get("Outputs", []) or []},
            stack_id=stack["StackId"],
        )

    def plan(
        self, template: Template, parameters: Mapping[str, str], *, create: bool, upload: bool = True
    ) -> ChangeSetPlan:
        """Create a change set and describe it (nothing is executed). A change set without changes is deleted."""
        body = json.dumps(template.as_dict(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256((body + json.dumps(dict(parameters), sort_keys=True)).encode()).hexdigest()[
            :12
        ]
        name = f"harness-{int(time.time())}-{digest}"
        kwargs: dict[str, Any] = {
            "StackName": self.name,
            "ChangeSetName": name,
            "ChangeSetType": "CREATE" if create else "UPDATE",
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
            "Capabilities": CAPABILITIES,
            "Description": f"harness deploy {digest}",
        }
        kwargs |= self._template_argument(body, digest, upload=upload)
        try:
            change_set_id = self.client.create_change_set(**kwargs)["Id"]
        except ClientError as exc:
            raise _aws_error(f"create change set for {self.name}", exc) from exc
        described = self._wait_change_set(change_set_id)
        plan = ChangeSetPlan(self.name, create, change_set_id=change_set_id)
        if described["Status"] == "FAILED":
            reason = str(described.get("StatusReason", ""))
            self.discard(change_set_id)
            if any(marker in reason for marker in NO_CHANGES):
                plan.no_changes = True
                plan.change_set_id = None
                return plan
            raise DeployError(f"CloudFormation refused the change set for {self.name}: {redact(reason)}")
        plan.changes = _changes(described)
        return plan

    def deployed(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The stack's current template (as applied) and parameter values."""
        try:
            body = self.client.get_template(StackName=self.name, TemplateStage="Original")["TemplateBody"]
        except ClientError as exc:
            raise _aws_error(f"read the template of {self.name}", exc) from exc
        template = json.loads(body) if isinstance(body, str) else dict(body)
        state = self.state()
        return template, dict(state.parameters) if state else {}

    def discard(self, change_set_id: str) -> None:
        try:
            self.client.delete_change_set(ChangeSetName=change_set_id, StackName=self.name)
        except ClientError:
            pass  # already gone: nothing to clean up

    def execute(
        self, plan: ChangeSetPlan, progress: Progress, *, timeout: float = STACK_TIMEOUT
    ) -> StackState:
        """Execute a planned change set and wait, reporting each resource event; raise `StackFailed` on failure."""
        if plan.change_set_id is None:
            raise DeployError(f"internal: no change set to execute for {self.name}")
        since = self._latest_event_time()
        try:
            self.client.execute_change_set(ChangeSetName=plan.change_set_id, StackName=self.name)
        except ClientError as exc:
            raise _aws_error(f"execute change set on {self.name}", exc) from exc
        return self._wait_stack(since, progress, timeout=timeout)

    # -- internals -------------------------------------------------------------------------------------------

    def _template_argument(self, body: str, digest: str, *, upload: bool) -> dict[str, str]:
        if len(body.encode()) <= TEMPLATE_BODY_LIMIT:
            return {"TemplateBody": body}
        if self.s3 is None or self.artifacts_bucket is None or not upload:
            raise DeployError(
                f"the template of {self.name} is {len(body)} bytes (over CloudFormation's inline limit of "
                f"{TEMPLATE_BODY_LIMIT}) and there is no artifacts bucket to upload it to",
                hint="run a deploy (not --plan) once: it creates the artifacts bucket",
            )
        key = f"templates/{self.name}/{digest}.json"
        try:
            self.s3.put_object(
                Bucket=self.artifacts_bucket, Key=key, Body=body.encode(), ContentType="application/json"
            )
        except ClientError as exc:
            raise _aws_error(f"upload the template to s3://{self.artifacts_bucket}/{key}", exc) from exc
        region = self.s3.meta.region_name
        return {"TemplateURL": f"https://{self.artifacts_bucket}.s3.{region}.amazonaws.com/{key}"}

    def _wait_change_set(self, change_set_id: str) -> dict[str, Any]:

        def created() -> dict[str, Any] | NotYet:
            described: dict[str, Any] = self.client.describe_change_set(
                ChangeSetName=change_set_id, StackName=self.name
            )
            pages = [described]
            while described.get("NextToken"):
                described = self.client.describe_change_set(
                    ChangeSetName=change_set_id, StackName=self.name, NextToken=described["NextToken"]
                )
                pages.append(described)
            first = pages[0]
            if first["Status"] in ("CREATE_COMPLETE", "FAILED"):
                first["Changes"] = [c for page in pages for c in page.get("Changes", [])]
                return first
            return NotYet(f"still {first['Status']}")

        # By hand, not boto3's `change_set_create_complete` waiter: a FAILED change set (no changes) is an answer.
        try:
            return wait_for(
                f"change set of {self.name}",
                created,
                timeout=CHANGE_SET_TIMEOUT,
                interval=POLL_SECONDS,
                max_interval=POLL_SECONDS,
            )
        except WaitTimeout as exc:
            raise DeployError(exc.message) from exc

    def _latest_event_time(self) -> Any:
        try:
            events = self.client.describe_stack_events(StackName=self.name)["StackEvents"]
        except ClientError:
            return None
        return max((e["Timestamp"] for e in events), default=None)

    def _events_since(self, since: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.client.describe_stack_events(StackName=self.name)["StackEvents"]
        fresh = [e for e in events if since is None or e["Timestamp"] > since]
        return sorted(fresh, key=lambda e: e["Timestamp"])

    def _wait_stack(self, since: Any, progress: Progress, *, timeout: float) -> StackState:
        seen: set[str] = set()
        collected: list[dict[str, Any]] = []

        def settled() -> StackState | NotYet:
            for event in self._events_since(since):
                if event["EventId"] in seen:
                    continue
                seen.add(event["EventId"])
                collected.append(event)
                reason = event.get("ResourceStatusReason") or ""
                kind = event.get("ResourceType", "")
                progress(
                    f"{event['ResourceStatus']:<28} {event['LogicalResourceId']:<36} {kind}"
                    + (f" — {redact(reason)}" if reason and reason != "User Initiated" else "")
                )
            state = self.state()
            if state is None:
                raise DeployError(f"stack {self.name} disappeared while it was being deployed")
            if not state.status.endswith(IN_PROGRESS) and state.status != "REVIEW_IN_PROGRESS":
                if state.status in GOOD_END:
                    return state
                failures = [
                    (
                        e["LogicalResourceId"],
                        e.get("ResourceType", ""),
                        redact(e.get("ResourceStatusReason") or ""),
                    )
                    for e in collected
                    if e["ResourceStatus"].endswith("_FAILED") and e["LogicalResourceId"] != self.name
                ]
                # The first failure is the cause; later ones are usually "Resource creation cancelled".
                cause = failures[0] if failures else (self.name, "AWS::CloudFormation::Stack", state.status)
                kept = (
                    "the previous version of the stack is intact"
                    if state.status == "UPDATE_ROLLBACK_COMPLETE"
                    else (
                        "nothing was kept: delete the stack before the next attempt"
                        if state.status == "ROLLBACK_COMPLETE"
                        else "the stack needs attention in the console"
                    )
                )
                raise StackFailed(
                    f"stack {self.name} failed ({state.status}): {cause[0]} ({cause[1]}): {cause[2]}",
                    failures,
                    hint=f"{kept}; `harness deploy --plan` shows what would be applied next",
                )
            return NotYet(f"still {state.status}")

        # By hand, not boto3's stack_*_complete waiters: each poll also streams the new stack events.
        try:
            return wait_for(
                f"stack {self.name} deployed",
                settled,
                timeout=timeout,
                interval=POLL_SECONDS,
                max_interval=POLL_SECONDS,
            )
        except WaitTimeout as exc:
            raise DeployError(exc.message) from exc


def _changes(described: Mapping[str, Any]) -> list[ResourceChange]:
    changes: list[ResourceChange] = []
    for change in described.get("Changes", []):
        rc = change.get("ResourceChange", {})
        details = sorted(
            {
                str(d.get("Target", {}).get("Name") or d.get("Target", {}).get("Attribute", ""))
                for d in rc.get("Details", [])
                if d.get("Target")
            }
            - {""}
        )
        changes.append(
            ResourceChange(
                action=str(rc.get("Action", "")),
                logical_id=str(rc.get("LogicalResourceId", "")),
                resource_type=str(rc.get("ResourceType", "")),
                replacement=str(rc.get("Replacement", "") or ""),
                details=tuple(details),
                raw_details=tuple(rc.get("Details", [])),
            )
        )
    return changes


def _aws_error(doing: str, exc: ClientError) -> DeployError:
    error = exc.response.get("Error", {})
    return DeployError(f"could not {doing}: {error.get('Code', '')}: {redact(str(error.get('Message', '')))}")
