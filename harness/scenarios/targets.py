"""Targets: where scenarios run and what can be observed there.

- `local`: the stack `harness up` (or the pytest `stack` fixture) runs; everything is observable.
- `deployed`: an AWS stack, known by its CloudFormation outputs (`--deployed-outputs FILE`). What can be
  observed depends on what the outputs give; a step needing more is refused at load time, with the reason.

`TargetSpec` (name + capabilities) is all the loader needs; `Target` is the connected runtime the runner uses.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness.errors import ScenarioError
from harness.scenarios import registry
from harness.scenarios.identity import CognitoIdentity
from harness.scenarios.probes.database import AppUserDatabase
from harness.scenarios.probes.email import Inbox, LocalInbox, SesEventsInbox
from harness.scenarios.probes.objects import ObjectStore
from harness.scenarios.probes.redis import RedisKeys
from harness.scenarios.probes.tasks import CeleryTaskProbe, TaskProbe
from harness.topology import Topology

if TYPE_CHECKING:
    from harness.scenarios.monitor import RedisMonitor
    from harness.testing import RunningStack


class Capability(enum.StrEnum):
    SUBDOMAIN = "subdomain"  # tenant_via: subdomain
    EMAIL = "email"  # expect_email: recipients and subjects
    EMAIL_BODY = "email_body"  # expect_email: body, body_contains, extract, links
    OBJECTS = "objects"  # expect_object, and the object audit
    DATABASE = "database"  # expect_rows
    REDIS = "redis"  # expect_redis
    TASKS = "tasks"  # expect_task
    REDIS_AUDIT = "redis_audit"  # the Redis key and task audits


@dataclass(frozen=True)
class TargetSpec:
    """A target's name and what it can run; `missing` says why each other capability is absent."""

    name: str
    capabilities: frozenset[Capability]
    missing: Mapping[Capability, str] = field(default_factory=dict)

    def can(self, capability: Capability | str) -> bool:
        """Whether the target has a built-in capability, or can make a registered connection."""
        if capability in self.capabilities:
            return True
        connection = registry.CONNECTIONS.get(str(capability))
        return connection is not None and connection.available_on(self.name)

    def why_not(self, capability: Capability | str) -> str:
        connection = registry.CONNECTIONS.get(str(capability))
        if connection is not None and connection.missing:
            return connection.missing
        default = f"the {self.name} target has no {capability} probe"
        return self.missing.get(capability, default) if isinstance(capability, Capability) else default


LOCAL_SPEC = TargetSpec("local", frozenset(Capability))


# --- deployed outputs -------------------------------------------------------------------------------------

# field -> the names it may have in the outputs file (CloudFormation output key first, then env-contract name).
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "api_url": ("ApiUrl", "API_URL"),
    "user_pool_id": ("UserPoolId", "COGNITO_USER_POOL_ID"),
    "client_id": ("UserPoolClientId", "COGNITO_CLIENT_ID"),
    "environment": ("Environment", "APP_ENV"),
    "region": ("Region", "AWS_REGION"),
    "bucket": ("MediaBucketName", "S3_BUCKET"),
    "client_secret": ("CognitoClientSecret", "COGNITO_CLIENT_SECRET"),
    "app_secret_key": ("AppSecretKey", "APP_SECRET_KEY"),
    "ses_events_queue_url": ("SesEventsQueueUrl", "SES_EVENTS_QUEUE_URL"),
    "redis_url": ("RedisUrl", "REDIS_URL"),
    "tenant_base_domain": ("TenantBaseDomain", "TENANT_BASE_DOMAIN"),
    "aws_endpoint_url": ("AwsEndpointUrl", "AWS_ENDPOINT_URL"),
}
REQUIRED_OUTPUTS = ("api_url", "user_pool_id", "client_id")
SECRET_OUTPUTS = ("client_secret", "app_secret_key", "redis_url")


@dataclass(frozen=True)
class DeployedOutputs:
    """What the scenario engine needs to know about a deployed stack (secrets are read from Secrets Manager
    unless given here: `CognitoClientSecret`, `AppSecretKey`)."""

    source: Path
    api_url: str
    user_pool_id: str
    client_id: str
    environment: str = "staging"
    region: str | None = None
    bucket: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    app_secret_key: str | None = field(default=None, repr=False)
    ses_events_queue_url: str | None = None
    redis_url: str | None = None
    tenant_base_domain: str | None = None
    aws_endpoint_url: str | None = None

    @classmethod
    def load(cls, path: Path) -> DeployedOutputs:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read the deployed outputs ({exc.strerror})") from exc
        except ValueError as exc:
            raise ScenarioError(f"{path}: not valid JSON: {exc}") from exc
        flat = _flatten_outputs(document)
        values: dict[str, Any] = {}
        for name, aliases in OUTPUT_NAMES.items():
            for alias in aliases:
                if flat.get(alias):
                    values[name] = str(flat[alias])
                    break
        missing = [name for name in REQUIRED_OUTPUTS if name not in values]
        if missing:
            wanted = "; ".join(f"{n}: {' or '.join(OUTPUT_NAMES[n])}" for n in missing)
            raise ScenarioError(
                f"{path}: the deployed outputs lack {wanted}",
                hint="give the app stack's CloudFormation outputs (describe-stacks JSON, a list of "
                "OutputKey/OutputValue, or a flat {name: value} object); see docs/scenarios.md",
            )
        return cls(source=path, **values)

    def spec(self) -> TargetSpec:
        given = {
            Capability.EMAIL: self.ses_events_queue_url,
            Capability.OBJECTS: self.bucket,
            Capability.REDIS: self.redis_url,
            Capability.SUBDOMAIN: self.tenant_base_domain,
        }
        present = frozenset(capability for capability, value in given.items() if value)
        missing = {
            Capability.SUBDOMAIN: "tenant subdomains need the outputs' TenantBaseDomain "
            "(a wildcard DNS name that reaches the API)",
            Capability.EMAIL: "email on a deployed stack needs SesEventsQueueUrl: an SQS queue receiving the "
            "configuration set's SES events (SNS->SQS)",
            Capability.EMAIL_BODY: "SES events carry recipients and subject, not the body; "
            "body, body_contains, extract and links are local-only (use `only: [local]`)",
            Capability.OBJECTS: "objects need the outputs' MediaBucketName",
            Capability.DATABASE: "the deployed database is private; expect_rows is local-only (use `only: [local]`)",
            Capability.REDIS: "deployed Redis is private; give RedisUrl (through a tunnel) to probe it",
            Capability.TASKS: "worker tasks are observed through Redis MONITOR, which ElastiCache refuses; "
            "expect_task is local-only (use `only: [local]`)",
            Capability.REDIS_AUDIT: "the Redis key and task audits need MONITOR (local only)",
        }
        return TargetSpec("deployed", present, {c: why for c, why in missing.items() if c not in present})


def _flatten_outputs(document: Any) -> dict[str, Any]:
    """Accept `aws cloudformation describe-stacks` JSON, a list of OutputKey/OutputValue, or a flat object."""
    if isinstance(document, dict) and isinstance(document.get("Stacks"), list):
        flat: dict[str, Any] = {}
        for stack in document["Stacks"]:
            flat |= _flatten_outputs(stack.get("Outputs", []))
        return flat
    if isinstance(document, dict) and isinstance(document.get("Outputs"), list):
        return _flatten_outputs(document["Outputs"])
    if isinstance(document, list):
        return {
            str(item["OutputKey"]): item.get("OutputValue")
            for item in document
            if isinstance(item, dict) and "OutputKey" in item
        }
    if isinstance(document, dict):
        return dict(document)
    return {}


# --- the connected runtime --------------------------------------------------------------------------------


@dataclass
class Target:
    """A connected target: the API, Cognito, the probes it has (None where it has none) and what to mask."""

    spec: TargetSpec
    topology: Topology
    api_url: str
    identity: CognitoIdentity
    app_secret_key: str = field(repr=False)
    subdomain_host: Callable[[str], tuple[str, str]] | None  # slug -> (base URL, Host header)
    inbox: Inbox | None = None
    objects: ObjectStore | None = None
    database: AppUserDatabase | None = None
    redis: RedisKeys | None = None
    tasks: TaskProbe | None = None
    monitor: RedisMonitor | None = None
    secrets: list[str] = field(default_factory=list, repr=False)
    report_dir: Path | None = None  # local: the state dir's scenario-reports/ (the console's Scenarios page)
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _connect: Callable[[registry.Connection], Any] | None = None
    _connected: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.spec.name

    def connection(self, name: str) -> Any:
        """The client of a registered `Connection` (made on first use, closed with the target)."""
        with self._lock:
            if name not in self._connected:
                connection = registry.CONNECTIONS.get(name)
                if connection is None or self._connect is None or not connection.available_on(self.name):
                    raise ScenarioError(
                        f"target {self.name} cannot connect {name}: {self.spec.why_not(name)}"
                    )
                client = self._connect(connection)
                self._connected[name] = client
                if callable(getattr(client, "close", None)):
                    self._closers.append(client.close)
            return self._connected[name]

    def close(self) -> None:
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # best effort: a probe that cannot close cleanly changes no result
                pass
        self._closers.clear()
        self._connected.clear()


def local_target(stack: RunningStack, *, with_monitor: bool = True) -> Target:
    """The local stack: every probe, the admin Redis MONITOR for audits."""
    from harness.scenarios.monitor import RedisMonitor

    env = stack.env("backend")
    topology = stack.topology
    aws = stack.aws
    identity = CognitoIdentity(
        aws.client("cognito-idp"),
        env["COGNITO_USER_POOL_ID"],
        env["COGNITO_CLIENT_ID"],
        env.get("COGNITO_CLIENT_SECRET"),
    )
    s3 = _s3_client(aws.endpoint_url, aws.region, aws.access_key_id, aws.secret_access_key)
    inbox = LocalInbox(env["AWS_ENDPOINT_URL"])
    database = AppUserDatabase(env["DATABASE_URL"])
    redis_keys = RedisKeys(stack.redis_admin_url)
    target = Target(
        spec=LOCAL_SPEC,
        topology=topology,
        api_url=stack.api_url,
        identity=identity,
        app_secret_key=env["APP_SECRET_KEY"],
        subdomain_host=_local_subdomains(stack.api_url),
        inbox=inbox,
        objects=ObjectStore(s3, env["S3_BUCKET"], topology.s3.tenant_prefix),
        database=database,
        redis=redis_keys,
        secrets=[env.get("COGNITO_CLIENT_SECRET", ""), env["APP_SECRET_KEY"], stack.redis.password],
        report_dir=stack.state.root / "scenario-reports",
    )
    target._closers += [inbox.close, database.close, redis_keys.close]
    target._connect = lambda connection: connection.local(stack) if connection.local else None
    if with_monitor:
        app_db = int(urlsplit(env["REDIS_URL"]).path.lstrip("/") or 0)
        monitor = RedisMonitor(stack.redis_admin_url, db=app_db)
        monitor.start()
        tasks = CeleryTaskProbe(monitor, stack.redis_admin_url)
        target.monitor, target.tasks = monitor, tasks
        target._closers += [monitor.close, tasks.close]
    return target


def _local_subdomains(api_url: str) -> Callable[[str], tuple[str, str]]:
    port = urlsplit(api_url).port

    def host(slug: str) -> tuple[str, str]:
        # The app reads the tenant from `{slug}.localhost` (app/tenancy.py); the socket still goes to the API.
        return api_url, f"{slug}.localhost" + (f":{port}" if port else "")

    return host


def deployed_target(outputs: DeployedOutputs, topology: Topology) -> Target:
    """A deployed stack through its outputs and the caller's AWS credentials."""
    import boto3

    spec = outputs.spec()
    region = outputs.region or topology.region
    session = boto3.session.Session(region_name=region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=outputs.aws_endpoint_url)  # type: ignore[call-overload]

    secrets_manager = None

    def secret(env_name: str, given: str | None) -> str:
        nonlocal secrets_manager
        if given:
            return given
        entry = next((s for s in topology.secrets if s.env == env_name), None)
        if entry is None:
            raise ScenarioError(f"the topology has no secret for {env_name} and the outputs give none")
        secrets_manager = secrets_manager or client("secretsmanager")
        try:
            return str(secrets_manager.get_secret_value(SecretId=entry.name)["SecretString"])
        except Exception as exc:
            raise ScenarioError(
                f"cannot read the secret {entry.name} ({env_name}) from Secrets Manager: {exc}",
                hint=f"grant secretsmanager:GetSecretValue on it, or put it in {outputs.source}",
            ) from exc

    client_secret = secret("COGNITO_CLIENT_SECRET", outputs.client_secret)
    app_secret_key = secret("APP_SECRET_KEY", outputs.app_secret_key)
    identity = CognitoIdentity(client("cognito-idp"), outputs.user_pool_id, outputs.client_id, client_secret)
    target = Target(
        spec=spec,
        topology=topology,
        api_url=outputs.api_url.rstrip("/"),
        identity=identity,
        app_secret_key=app_secret_key,
        subdomain_host=_deployed_subdomains(outputs.api_url, outputs.tenant_base_domain),
        secrets=[client_secret, app_secret_key, *([outputs.redis_url] if outputs.redis_url else [])],
    )
    if outputs.ses_events_queue_url:
        target.inbox = SesEventsInbox(client("sqs"), outputs.ses_events_queue_url)
    if outputs.bucket:
        target.objects = ObjectStore(client("s3"), outputs.bucket, topology.s3.tenant_prefix)
    if outputs.redis_url:
        target.redis = RedisKeys(outputs.redis_url)
        target._closers.append(target.redis.close)
    target._connect = lambda connection: (
        connection.deployed(outputs, topology) if connection.deployed else None
    )
    return target


def _deployed_subdomains(api_url: str, base_domain: str | None) -> Callable[[str], tuple[str, str]] | None:
    if not base_domain:
        return None
    scheme = urlsplit(api_url).scheme or "https"

    def host(slug: str) -> tuple[str, str]:
        name = f"{slug}.{base_domain.strip('.')}"
        return f"{scheme}://{name}", name

    return host


def _s3_client(endpoint_url: str | None, region: str, key_id: str, secret: str) -> Any:
    import boto3
    from botocore.config import Config

    addressing: Any = "path" if endpoint_url else "virtual"
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": addressing}),
    )
