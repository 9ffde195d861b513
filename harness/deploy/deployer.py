"""`AwsDeployer`: the topology promoted to AWS — guard rails, plan, drift check, apply, rollout, gate.

Stacks, in order: `base` (ECR repository, artifacts bucket; the topology's region), `edge` (WAF web ACL and
viewer certificate; us-east-1, as CloudFront requires), `app` (everything else). The app stack is applied in
two steps so that migrations run before any service sees the new image:

1. infrastructure + the release's one-off task definitions, services pinned to the image they run now
   (on a first deploy: no services yet);
2. one-off tasks: `dbroles` (RDS master credentials: the app's roles and grants), then `migrate` (as the
   schema owner, app_migrator; migrations are backwards compatible, as the architecture requires), then
   `dbroles` again: the runtime role's privilege allow-list applied to the tables the migrations made;
3. the services moved to the release image (rolling 100/200, circuit breaker), waited on until stable;
4. the gate: health through CloudFront and the ALB, then the scenarios of the `deployed` target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.deploy.cloudformation import (
    ChangeSetPlan,
    CloudFormationStack,
    ResourceChange,
    StackFailed,
    StackState,
)
from harness.deploy.context import (
    DATABASE,
    P_ALB_PREFIX_LIST,
    P_CLOUDFRONT_CERT,
    P_RELEASE_TAG,
    P_REPOSITORY_URI,
    P_SERVICE_TAG,
    P_WEB_ACL,
    role_password_id,
    task_definition_id,
)
from harness.deploy.drift import DriftReport, check_env_contract
from harness.deploy.gate import GateResult, check_health, run_scenario_gate
from harness.deploy.naming import (
    CLOUDFRONT_PREFIX_LIST,
    DB_ROLES_TASK,
    EDGE_REGION,
    MIGRATE_TASK,
    DeployNames,
)
from harness.deploy.plandiff import annotate_changes
from harness.deploy.releases import FAILED, PASSED, PENDING, SKIPPED, Release, ReleaseLedger, ReleaseRecord
from harness.deploy.render import render_app_template, render_base_template, render_edge_template
from harness.deploy.rollout import Network, check_image, run_one_off_task, wait_services_stable
from harness.deploy.target import AwsTarget
from harness.deploy.template import Template
from harness.errors import DeployError
from harness.readiness import NotYet, WaitTimeout, wait_for
from harness.topology import Topology

PRODUCTION_ENVS = frozenset({"production", "prod"})
Progress = Callable[[str, str], None]  # (stage, message)
Confirm = Callable[[str], str]  # prompt -> what the person typed


@dataclass(frozen=True)
class GateTarget:
    """What the gate runs against: stack outputs, and the environment of the scenario run (None: this one's)."""

    outputs: dict[str, str]
    env: dict[str, str] | None = None


# deployed stack outputs -> what the gate runs against (the rehearsal: a local app stack)
GateOutputs = Callable[[dict[str, str]], GateTarget]


@dataclass(frozen=True)
class DeployOptions:
    image_tag: str | None = None
    plan_only: bool = False
    assume_yes: bool = False
    production: bool = False  # the explicit --production flag
    confirm_account: str | None = (
        None  # non-interactive account confirmation (required for production + --yes)
    )
    skip_gate: bool = False
    scenarios_dir: Path = Path("scenarios")


@dataclass
class DeployReport:
    account_id: str = ""
    plans: list[ChangeSetPlan] = field(default_factory=list)
    drift: DriftReport | None = None
    noop: bool = False
    applied: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    gate: GateResult | None = None
    seconds: float = 0.0
    release: Release | None = None  # what this deploy releases (None: the app stack does not exist yet)
    record: ReleaseRecord | None = None  # the verdict recorded for that release, if any
    latest: ReleaseRecord | None = None  # the release the app stack runs now, as recorded


def _noop_progress(stage: str, message: str) -> None:
    del stage, message


class AwsDeployer:
    """Deploys one environment of the topology to the account the topology names."""

    def __init__(
        self,
        topology: Topology,
        target: AwsTarget,
        *,
        progress: Progress = _noop_progress,
        confirm: Confirm | None = None,
        gate_outputs: GateOutputs | None = None,
    ) -> None:
        self.topology = topology
        self.target = target
        self.names = DeployNames.of(topology)
        self.progress = progress
        self.confirm = confirm
        self.gate_outputs = gate_outputs

    @property
    def ledger(self) -> ReleaseLedger:
        return ReleaseLedger(self.target.client("s3"), self.names.artifacts_bucket, self.names.app_stack)

    def release_of(self, image_tag: str) -> Release:
        """The release of `image_tag` with the templates the topology renders now."""
        return Release.of(
            image_tag,
            {
                self.names.base_stack: render_base_template(self.topology).to_json(),
                self.names.edge_stack: render_edge_template(self.topology).to_json(),
                self.names.app_stack: render_app_template(self.topology).to_json(),
            },
        )

    # -- stacks ----------------------------------------------------------------------------------------------

    def _stack(self, name: str, region: str | None = None, *, artifacts: bool = False) -> CloudFormationStack:
        return CloudFormationStack(
            self.target.client("cloudformation", region),
            name,
            s3=self.target.client("s3") if artifacts else None,
            artifacts_bucket=self.names.artifacts_bucket if artifacts else None,
        )

    def stacks(self) -> tuple[CloudFormationStack, CloudFormationStack, CloudFormationStack]:
        return (
            self._stack(self.names.base_stack),
            self._stack(self.names.edge_stack, EDGE_REGION),
            self._stack(self.names.app_stack, artifacts=True),
        )

    # -- guard rails -----------------------------------------------------------------------------------------

    def check_guard_rails(self, options: DeployOptions) -> str:
        """Refuse production without its flag, and any account but the one the topology names."""
        env, expected = self.topology.env, self.topology.project.account_id
        if env == "local":
            raise DeployError(
                "`local` is the embedded stack, not an AWS environment", hint="use --env staging"
            )
        if env in PRODUCTION_ENVS and not options.production:
            raise DeployError(
                f"refusing to touch {env} without --production",
                hint=f"`harness deploy --env {env} --production` (and type the account id when asked)",
            )
        if (
            env in PRODUCTION_ENVS
            and options.assume_yes
            and options.confirm_account is None
            and not options.plan_only
        ):
            raise DeployError(
                f"--yes alone does not deploy {env}",
                hint=f"add --confirm-account {expected} (CI), or drop --yes",
            )
        account = self.target.account_id()
        if account != expected:
            raise DeployError(
                f"the credentials are for account {account}, but {env} is account {expected} "
                f"(project.account_id in {self.topology.source.name})",
                hint=f"use the credentials of {expected}, or check --env",
            )
        return account

    def _confirm(self, options: DeployOptions, account: str) -> None:
        what = f"{self.topology.project.name} {self.topology.env} (account {account}, {self.target.where})"
        if options.confirm_account is not None:
            if options.confirm_account != account:
                raise DeployError(
                    f"--confirm-account {options.confirm_account} does not match account {account}"
                )
            return
        if options.assume_yes:
            return
        if self.confirm is None:
            raise DeployError(
                f"deploying {what} needs a confirmation", hint="run in a terminal, or pass --yes"
            )
        typed = self.confirm(f"Deploy {what}? Type the account id to confirm")
        if typed.strip() != account:
            raise DeployError("not confirmed: nothing was deployed")

    # -- plan ------------------------------------------------------------------------------------------------

    def render(self, stack: str = "app") -> Template:
        return {"base": render_base_template, "edge": render_edge_template}.get(stack, render_app_template)(
            self.topology
        )

    def plan(self, options: DeployOptions) -> DeployReport:
        """What a deploy would change, stack by stack; change sets are created, described and deleted."""
        report = DeployReport(account_id=self.check_guard_rails(options))
        base, edge, app = self.stacks()
        base_state, edge_state, app_state = base.state(), edge.state(), app.state()
        app_template = render_app_template(self.topology)
        stacks: list[tuple[CloudFormationStack, StackState | None, Template, dict[str, str] | None]] = [
            (base, base_state, render_base_template(self.topology), {}),
            (edge, edge_state, render_edge_template(self.topology), {}),
            (app, app_state, app_template, None),
        ]
        for stack, state, template, given in stacks:
            if state is None or not state.usable:
                report.plans.append(_creation_plan(stack.name, template, self.topology.region))
                continue
            if given is None:
                tag = self._image_tag(options, state)
                given = self._app_parameters(base_state, edge_state, release=tag, service=tag)
            params = given
            plan = stack.plan(template, params, create=False)
            if plan.change_set_id:
                stack.discard(plan.change_set_id)
            old_template, old_params = stack.deployed() if plan.changes else ({}, {})
            plan.changes = annotate_changes(
                plan.changes,
                old_template,
                old_params,
                template.as_dict(),
                params,
                region=self.topology.region,
            )
            report.plans.append(plan)
        report.drift = self._drift(app_template, app, app_state)
        report.noop = all(p.no_changes or (not p.create and not p.changes) for p in report.plans)
        if app_state is not None and app_state.usable:
            report.release = self.release_of(self._image_tag(options, app_state))
            report.record = self.ledger.get(report.release.id)
            report.latest = self.ledger.latest()
        return report

    # -- deploy ----------------------------------------------------------------------------------------------

    def deploy(self, options: DeployOptions) -> DeployReport:
        started = time.monotonic()
        if options.plan_only:
            return self.plan(options)
        report = self.plan(options)
        for plan in report.plans:
            self.progress("plan", plan.render())
        if report.drift is not None:
            self.progress("drift", report.drift.render())
            if not report.drift.ok:
                raise DeployError(
                    "the env contract does not match the target (see the list above): nothing was applied",
                    hint="fix the topology or the account, then deploy again",
                )
        if report.noop and report.release is not None:
            record = report.record
            if record is not None and (record.done or (options.skip_gate and record.gate == SKIPPED)):
                report.seconds = time.monotonic() - started
                self.progress("release", record.describe())
                self.progress(
                    "done", "no changes: every stack is up to date and runs this image; nothing to do"
                )
                return report
            why = (
                record.describe() if record is not None else f"release {report.release.id}: no gate on record"
            )
            self.progress("release", f"nothing to apply, but {why}: the gate runs again")
            state = self.stacks()[2].state()
            assert state is not None
            report.outputs = dict(state.outputs)
            self._gate_release(options, report, running=None)
            report.seconds = time.monotonic() - started
            return report
        self._confirm(options, report.account_id)
        base, edge, app = self.stacks()
        base_state = self._apply(base, render_base_template(self.topology), {}, report)
        edge_state = self._apply(edge, render_edge_template(self.topology), {}, report)
        app_state = self._ready_app_stack(app)
        tag = self._image_tag(options, app_state)
        check_image(
            self.target.client("ecr"),
            base_state.outputs.get("ImageRepositoryName", self.names.repository),
            tag,
        )
        running = app_state.parameters.get(P_SERVICE_TAG) if app_state else None
        first = app_state is None
        step1 = render_app_template(self.topology, with_services=not first)
        params = self._app_parameters(base_state, edge_state, release=tag, service=running or tag)
        self.progress(
            "app",
            "step 1/3: infrastructure and the release's one-off tasks"
            + (" (first deploy: no services yet)" if first else f" (services stay on {running})"),
        )
        changed = self._apply_if_changed(app, step1, params, report, create=first)
        state = app.state()
        if state is None:
            raise DeployError(f"stack {app.name} is missing after it was applied")
        inputs = self.one_off_inputs() & {c.logical_id for c in changed}
        if first or running != tag or inputs:
            self._run_one_off_tasks(state)
        else:
            self.progress(
                "app", "step 2/3: one-off tasks skipped (image, task definitions, database unchanged)"
            )
        final = render_app_template(self.topology)
        params = self._app_parameters(base_state, edge_state, release=tag, service=tag)
        self.progress("app", f"step 3/3: services to image {tag}")
        self._apply_if_changed(app, final, params, report, create=False)
        state = app.state()
        assert state is not None
        services = [self.names.service(n) for n in self.topology.services]
        wait_services_stable(
            self.target.client("ecs"), cluster=state.outputs["ClusterName"], services=services,
            progress=lambda m: self.progress("rollout", m),
        )  # fmt: skip
        report.outputs = dict(state.outputs)
        report.release = self.release_of(tag)
        self._gate_release(options, report, running=running if running != tag else None)
        report.seconds = time.monotonic() - started
        return report

    def one_off_inputs(self) -> set[str]:
        """Resources whose change reruns `dbroles` and `migrate` (besides a new image, which brings new
        migrations and the topology's roles): their task definitions, the database, the role passwords."""
        ids = {task_definition_id(DB_ROLES_TASK), task_definition_id(MIGRATE_TASK), DATABASE}
        return ids | {role_password_id(role) for role in self.topology.postgres.roles}

    def _gate_release(self, options: DeployOptions, report: DeployReport, *, running: str | None) -> None:
        """Run the gate for `report.release` and record its verdict; a failed gate fails the deploy."""
        assert report.release is not None
        ledger = self.ledger
        ledger.put(ReleaseRecord(report.release, PENDING))
        report.gate = self._gate(options, report.outputs)
        verdict = SKIPPED if report.gate.skipped else PASSED if report.gate.passed else FAILED
        report.record = ReleaseRecord(report.release, verdict, detail=report.gate.render())
        ledger.put(report.record)
        if not report.gate.passed:
            raise DeployError(
                f"{report.gate.render()}\nthe stack is deployed, but release {report.release.id} is marked "
                "FAILED: a rerun runs the gate again",
                hint=f"redeploy the previous image: --image-tag {running}" if running else None,
            )

    def deploy_base(self, options: DeployOptions) -> DeployReport:
        """Only the base stack (ECR repository, artifacts bucket): what CI needs before it can push the image."""
        started = time.monotonic()
        report = DeployReport(account_id=self.check_guard_rails(options))
        base = self.stacks()[0]
        state = base.state()
        template = render_base_template(self.topology)
        if state is None or not state.usable:
            plan = _creation_plan(base.name, template, self.topology.region)
        else:
            plan = base.plan(template, {}, create=False)
            if plan.change_set_id:
                base.discard(plan.change_set_id)
        report.plans.append(plan)
        self.progress("plan", plan.render())
        report.noop = plan.no_changes
        if options.plan_only or report.noop:
            report.seconds = time.monotonic() - started
            return report
        self._confirm(options, report.account_id)
        report.outputs = self._apply(base, template, {}, report).outputs
        report.seconds = time.monotonic() - started
        return report

    # -- steps -----------------------------------------------------------------------------------------------

    def _apply(
        self, stack: CloudFormationStack, template: Template, params: dict[str, str], report: DeployReport
    ) -> StackState:
        state = stack.state()
        if state is not None and state.status == "ROLLBACK_COMPLETE":
            self._delete_failed_create(stack)
            state = None
        self._apply_if_changed(stack, template, params, report, create=state is None)
        final = stack.state()
        if final is None:
            raise DeployError(f"stack {stack.name} is missing after it was applied")
        return final

    def _apply_if_changed(
        self,
        stack: CloudFormationStack,
        template: Template,
        params: dict[str, str],
        report: DeployReport,
        *,
        create: bool,
    ) -> list[ResourceChange]:
        plan = stack.plan(template, params, create=create)
        if plan.no_changes:
            self.progress(stack.name, "up to date")
            return []
        self.progress(stack.name, f"applying: {plan.summary()}")
        try:
            stack.execute(plan, lambda m: self.progress(stack.name, m))
        except StackFailed as exc:
            for logical_id, kind, reason in exc.failures[:5]:
                self.progress(stack.name, f"FAILED {logical_id} ({kind}): {reason}")
            raise
        report.applied.append(stack.name)
        return plan.changes

    def _ready_app_stack(self, app: CloudFormationStack) -> StackState | None:
        state = app.state()
        if state is not None and state.status in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):
            self._delete_failed_create(app)
            return None
        if state is not None and not state.usable:
            raise DeployError(
                f"stack {app.name} is {state.status}: it cannot be updated now",
                hint="wait, or fix it in the console",
            )
        return state

    def _delete_failed_create(self, stack: CloudFormationStack) -> None:
        # A stack whose creation rolled back holds nothing and cannot be updated: CloudFormation needs it deleted.
        self.progress(stack.name, "deleting the stack left by a failed first deploy (it holds no resources)")
        stack.client.delete_stack(StackName=stack.name)

        def deleted() -> bool | NotYet:
            state = stack.state()
            return (
                True
                if state is None or state.status == "DELETE_COMPLETE"
                else NotYet(f"still {state.status}")
            )

        try:
            wait_for(f"stack {stack.name} DELETE_COMPLETE", deleted, timeout=1800, interval=2, max_interval=2)
        except WaitTimeout as exc:
            raise DeployError(exc.message) from exc

    def _run_one_off_tasks(self, state: StackState) -> None:
        outputs = state.outputs
        network = Network(tuple(outputs["AppSubnetIds"].split(",")), outputs["TaskSecurityGroupId"])
        ecs = self.target.client("ecs")
        for task, output, label in (
            (DB_ROLES_TASK, "DbRolesTaskDefinition", "step 2/3: database roles"),
            (MIGRATE_TASK, "MigrateTaskDefinition", "step 2/3: migrations (app_migrator)"),
            # Again after the migrations: the privilege allow-list applied to the tables they made.
            (DB_ROLES_TASK, "DbRolesTaskDefinition", "step 2/3: privileges after the migrations"),
        ):
            run_one_off_task(
                ecs, cluster=outputs["ClusterName"], task_definition=outputs[output], network=network,
                label=label, log_group=self.names.log_group(task), progress=lambda m: self.progress("rollout", m),
            )  # fmt: skip

    def _gate(self, options: DeployOptions, outputs: dict[str, str]) -> GateResult:
        if options.skip_gate:
            message = (
                "GATE SKIPPED (--skip-gate): no health check and no scenario ran against this deploy; "
                "nothing says it works"
            )
            self.progress("gate", message)
            return GateResult(True, detail=message, skipped=True)
        gate = self.gate_outputs(outputs) if self.gate_outputs is not None else GateTarget(outputs)
        outputs = gate.outputs
        health_path = next((s.health_path for s in self.topology.services.values() if s.health_path), "/")
        health = check_health(outputs["ApiUrl"].rstrip("/") + str(health_path))
        self.progress("gate", health.detail)
        if not health.passed:
            return health
        result = run_scenario_gate(outputs, scenarios_dir=options.scenarios_dir, env=gate.env)
        self.progress("gate", result.render())
        return result

    def _drift(self, template: Template, app: CloudFormationStack, state: StackState | None) -> DriftReport:
        resources: list[str] | None = None
        if state is not None and state.usable:
            paginator = app.client.get_paginator("list_stack_resources")
            resources = [
                r["LogicalResourceId"]
                for page in paginator.paginate(StackName=app.name)
                for r in page.get("StackResourceSummaries", [])
                if not str(r.get("ResourceStatus", "")).startswith("DELETE")
            ]
        return check_env_contract(
            self.topology,
            template,
            secretsmanager=self.target.client("secretsmanager"),
            ssm=self.target.client("ssm"),
            stack_resources=resources,
        )

    def _image_tag(self, options: DeployOptions, app_state: StackState | None) -> str:
        if options.image_tag:
            return options.image_tag
        running = app_state.parameters.get(P_SERVICE_TAG) if app_state else None
        if running:
            return running
        raise DeployError(
            "a first deploy needs the image to run", hint="pass --image-tag <tag pushed to ECR>"
        )

    def _app_parameters(
        self, base: StackState | None, edge: StackState | None, *, release: str, service: str
    ) -> dict[str, str]:
        base_out = base.outputs if base else {}
        edge_out = edge.outputs if edge else {}
        return {
            P_RELEASE_TAG: release,
            P_SERVICE_TAG: service,
            P_REPOSITORY_URI: base_out.get("ImageRepositoryUri", ""),
            P_WEB_ACL: edge_out.get("WebAclArn", ""),
            P_CLOUDFRONT_CERT: edge_out.get("CertificateArn", ""),
            P_ALB_PREFIX_LIST: self._cloudfront_prefix_list(),
        }

    def _cloudfront_prefix_list(self) -> str:
        ec2: Any = self.target.client("ec2")
        lists = ec2.describe_managed_prefix_lists(
            Filters=[{"Name": "prefix-list-name", "Values": [CLOUDFRONT_PREFIX_LIST]}]
        ).get("PrefixLists", [])
        return str(lists[0]["PrefixListId"]) if lists else ""


def _creation_plan(stack: str, template: Template, region: str) -> ChangeSetPlan:
    """The plan of a stack that does not exist yet, read from the template (no change set: --plan creates nothing)."""
    changes = [
        ResourceChange("Add", logical_id, kind)
        for logical_id, kind in sorted(template.resource_types().items())
    ]
    changes = annotate_changes(changes, {}, {}, template.as_dict(), {}, region=region)
    return ChangeSetPlan(stack, create=True, changes=changes)
