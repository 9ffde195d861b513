"""The one typed model of the environment, loaded from `topology.toml` (+ per-environment overrides).

Every runner reads a frozen `Topology`; nothing else hard-codes a bucket name, port, role or prefix.
Loading resolves the name placeholders `{project}`, `{env}`, `{account_id}` and `{region}`; references of the
form `${dotted.key}` in secret and parameter values are resolved later, at provisioning time, from what the
running stack reports (see `REFERENCE_KEYS`). The `[deploy]` tables are in harness.topology_deploy, the base
of every table in harness.topology_model, where a problem is (file:line: dotted.key) in harness.topology_problems.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from harness.errors import TopologyError
from harness.s3names import bucket_name_problem
from harness.topology_deploy import Deploy
from harness.topology_model import Port
from harness.topology_model import TableModel as _Model  # the name every table here subclasses
from harness.topology_privileges import RolePrivileges
from harness.topology_problems import describe_error, format_problems, split_dotted
from harness.topology_redis import RedisAcl

DEFAULT_TOPOLOGY_FILE = "topology.toml"
DEFAULT_ENV = "local"
NAME_PLACEHOLDERS = ("project", "env", "account_id", "region")
_REFERENCE = re.compile(r"\$\{([a-z0-9_.]+)\}")


class Project(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    account_id: Annotated[str, Field(pattern=r"^\d{12}$")]


class Aws(_Model):
    port: Port = 4566
    # An AWS-compatible emulator already running (LocalStack, fakecloud, another moto): the stack attaches to
    # it instead of starting the harness's own (harness/backends/external.py). Local tiers only.
    endpoint: Annotated[str, Field(pattern=r"^https?://[^/\s]+(/\S*)?$")] | None = None


class PostgresRole(_Model):
    purpose: str
    login: bool = True
    owns_schema: bool = False
    bypass_rls: bool = False
    privileges: RolePrivileges | None = None  # runtime roles: the allow-list (harness/topology_privileges.py)


class Postgres(_Model):
    version: Literal[16]
    port: Port = 5432
    database: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    schema_name: Annotated[str, Field(alias="schema", pattern=r"^[a-z_][a-z0-9_]*$")] = "public"
    roles: dict[str, PostgresRole]

    @field_validator("roles")
    @classmethod
    def _roles_shape(cls, roles: dict[str, PostgresRole]) -> dict[str, PostgresRole]:
        for name in roles:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"role name {name!r} must be a lowercase SQL identifier")
        owners = [n for n, r in roles.items() if r.owns_schema]
        if len(owners) != 1:
            raise ValueError(f"exactly one role must have owns_schema = true (found {owners or 'none'})")
        for name, role in roles.items():
            if not role.owns_schema and role.bypass_rls:
                raise ValueError(
                    f"role {name!r} is a runtime role (owns_schema = false) and must not bypass RLS; "
                    "set bypass_rls = false"
                )
            if role.owns_schema and role.privileges is not None:
                raise ValueError(
                    f"role {name!r} owns the schema: an allow-list of privileges is for runtime roles"
                )
        if not [n for n, r in roles.items() if not r.owns_schema]:
            raise ValueError("at least one runtime role (owns_schema = false) is needed for the app")
        return roles

    @property
    def owner_role(self) -> str:
        return next(n for n, r in self.roles.items() if r.owns_schema)


class RedisNamespace(_Model):
    prefix: Annotated[str, Field(pattern=r"^[a-z0-9_:-]+:$")]
    purpose: str
    users: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")], ...]

    @property
    def pattern(self) -> str:
        return f"{self.prefix}*"


class Redis(_Model):
    version: Literal[7]
    port: Port = 6379
    namespaces: tuple[RedisNamespace, ...]
    # The command rules of a component user that has no allow-list in [redis.acl.<user>]: every command but
    # the admin ones and the keyless commands that destroy or list what is not the user's (SWAPDB empties db 0
    # like FLUSHDB, SCRIPT FLUSH / FUNCTION * reach every user's scripts, KEYS and RANDOMKEY name every
    # namespace's keys). The shipped topology gives every user an allow-list instead (docs/topology.md).
    acl_commands: str = (
        "+@all -@admin -flushall -flushdb -swapdb -keys -randomkey -script|flush -script|kill -function"
    )
    # user -> exactly the commands it may run (an allow-list; harness/topology_redis.py)
    acl: dict[str, RedisAcl] = {}

    @field_validator("namespaces")
    @classmethod
    def _unique_prefixes(cls, namespaces: tuple[RedisNamespace, ...]) -> tuple[RedisNamespace, ...]:
        seen: set[str] = set()
        for ns in namespaces:
            if ns.prefix in seen:
                raise ValueError(f"namespace prefix {ns.prefix!r} is declared twice")
            seen.add(ns.prefix)
        return namespaces

    @model_validator(mode="after")
    def _acl_users_exist(self) -> Redis:
        users = self.users
        for name in self.acl:
            if name not in users:
                known = ", ".join(users) or "none"
                raise ValueError(
                    f"redis.acl.{name}: no namespace lists user {name!r} (users: {known});"
                    " add it to a [[redis.namespaces]] users list or remove the allow-list"
                )
        return self

    def command_rules(self, user: str) -> tuple[str, ...]:
        """The ACL command rules of `user`: its allow-list, or `acl_commands` when it has none."""
        acl = self.acl.get(user)
        return acl.rules if acl is not None else tuple(self.acl_commands.split())

    @property
    def users(self) -> dict[str, tuple[str, ...]]:
        """ACL user name -> the key prefixes it may touch, in declaration order."""
        users: dict[str, list[str]] = {}
        for ns in self.namespaces:
            for user in ns.users:
                users.setdefault(user, []).append(ns.prefix)
        return {user: tuple(prefixes) for user, prefixes in users.items()}

    def namespace_of(self, key: str) -> RedisNamespace | None:
        return next((ns for ns in self.namespaces if key.startswith(ns.prefix)), None)


class LifecycleRule(_Model):
    id: str
    transition_days: Annotated[int, Field(ge=1)]
    storage_class: Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER"]


class S3(_Model):
    bucket: str
    versioning: bool = True
    block_public_access: bool = True
    encryption: Literal["AES256", "aws:kms"] = "AES256"
    tenant_prefix: str = "{tenant_id}/"
    presign_expiry_seconds: Annotated[int, Field(ge=1, le=604800)] = 900
    lifecycle: tuple[LifecycleRule, ...] = ()

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, name: str) -> str:
        # AWS's naming rules (harness/s3names.py), so a bad name fails here rather than at the first deploy.
        if problem := bucket_name_problem(name):
            raise ValueError(f"{name!r} is not a valid S3 bucket name: {problem}")
        return name

    @field_validator("tenant_prefix")
    @classmethod
    def _tenant_prefix(cls, prefix: str) -> str:
        if not prefix.startswith("{tenant_id}") or not prefix.endswith("/"):
            raise ValueError("must start with '{tenant_id}' and end with '/', e.g. '{tenant_id}/'")
        return prefix

    def key_prefix(self, tenant_id: str) -> str:
        return self.tenant_prefix.replace("{tenant_id}", tenant_id)


class Ses(_Model):
    domain: Annotated[str, Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")]
    sender: str
    configuration_set: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    dkim: bool = True

    @model_validator(mode="after")
    def _sender_in_domain(self) -> Ses:
        if not self.sender.endswith("@" + self.domain):
            raise ValueError(f"sender {self.sender!r} must be an address of the domain {self.domain!r}")
        return self


class PasswordPolicy(_Model):
    minimum_length: Annotated[int, Field(ge=6, le=99)]
    require_uppercase: bool = True
    require_lowercase: bool = True
    require_numbers: bool = True
    require_symbols: bool = True


class AppClient(_Model):
    name: str
    generate_secret: bool = True
    refresh_token_rotation: bool = True
    refresh_token_grace_seconds: Annotated[int, Field(ge=0, le=60)] = 60
    auth_flows: tuple[
        Literal[
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_ADMIN_USER_PASSWORD_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
            "ALLOW_CUSTOM_AUTH",
            "ALLOW_USER_AUTH",
        ],
        ...,
    ]


class Cognito(_Model):
    user_pool_name: str
    mfa: Literal["OFF", "OPTIONAL", "ON"] = "OPTIONAL"
    mfa_required_groups: tuple[str, ...] = ()
    groups: tuple[str, ...]
    password_policy: PasswordPolicy
    app_client: AppClient

    @model_validator(mode="after")
    def _groups_known(self) -> Cognito:
        unknown = [g for g in self.mfa_required_groups if g not in self.groups]
        if unknown:
            raise ValueError(f"mfa_required_groups names groups not in groups {list(self.groups)}: {unknown}")
        return self


class Secret(_Model):
    name: str
    env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    description: str = ""
    value: str | None = None
    generate: Annotated[int, Field(ge=16, le=4096)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        if (self.value is None) == (self.generate is None):
            raise ValueError("give exactly one of `value` (a ${reference}) or `generate` (a length)")
        return self


class Parameter(_Model):
    name: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_./-]+$")]
    env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    description: str = ""
    value: str


class Service(_Model):
    kind: Literal["asgi", "celery"]
    app: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")]
    port: Port | None = None
    health_path: str | None = None
    redis_user: str
    # celery: worker processes (prefork children) the local stack runs; each is a whole interpreter (~70 MB)
    concurrency: Annotated[int, Field(ge=1, le=32)] | None = None
    # celery: its execution pool. `threads` runs the tasks in threads of one process (the app's tasks wait on
    # the database, SES and S3, not the CPU): one interpreter instead of 1 + concurrency.
    pool: Literal["prefork", "threads", "solo"] | None = None

    @property
    def worker_concurrency(self) -> int:
        return self.concurrency or 2

    def worker_pool_args(self) -> list[str]:
        """The celery worker's `--pool`/`--concurrency` arguments."""
        pool = ["--pool", self.pool] if self.pool else []
        return [*pool, "--concurrency", str(self.worker_concurrency)]

    @model_validator(mode="after")
    def _shape(self) -> Service:
        if self.kind == "asgi" and (self.port is None or self.health_path is None):
            raise ValueError("an asgi service needs `port` and `health_path`")
        if self.kind == "celery" and self.port is not None:
            raise ValueError("a celery service listens on no port; remove `port`")
        if self.kind == "asgi" and (self.concurrency is not None or self.pool is not None):
            raise ValueError("`concurrency` and `pool` are for a celery service (its worker)")
        if self.health_path is not None and not self.health_path.startswith("/"):
            raise ValueError("health_path must start with '/'")
        return self


class Console(_Model):
    """`[console]`: the local web console (harness/webconsole), a local-tier component only (never deployed)."""

    enabled: bool = True
    port: Port = 8025


class AppCommands(_Model):
    migrate: tuple[str, ...] = ()
    seed: tuple[str, ...] = ()
    # Files and dirs (relative to the topology file) whose content decides whether `up` reruns migrate+seed.
    inputs: tuple[str, ...] = ()
    # Live reload: dirs (relative to the topology file) whose Python files restart the app processes when
    # saved (default: the top-level package of each service's import path), and dirs inside them that never
    # do (the migrations: `harness migrate` applies those).
    watch: tuple[str, ...] = ()
    watch_exclude: tuple[str, ...] = ()


class Topology(_Model):
    """One environment of the topology, every placeholder in names resolved."""

    env: str
    source: Path
    project: Project
    aws: Aws
    postgres: Postgres
    redis: Redis
    s3: S3
    ses: Ses
    cognito: Cognito
    secrets: tuple[Secret, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    services: dict[str, Service] = {}
    app: AppCommands = AppCommands()
    console: Console = Console()
    deploy: Deploy = Deploy()

    @property
    def region(self) -> str:
        return self.project.region

    def ports(self) -> dict[str, int]:
        """Component name -> the port the topology gives it (before `--ports auto`)."""
        ports = {"postgres": self.postgres.port, "redis": self.redis.port, "aws": self.aws.port}
        for name, service in self.services.items():
            if service.port is not None:
                ports[name] = service.port
        if self.console.enabled:
            ports["console"] = self.console.port
        return ports

    def watch_dirs(self) -> tuple[str, ...]:
        """`[app] watch`, else the top-level package of each service's import path (`app.main:app` → `app`)."""
        if self.app.watch:
            return self.app.watch
        return tuple(dict.fromkeys(s.app.split(":")[0].split(".")[0] for s in self.services.values()))

    def env_keys(self) -> dict[str, Secret | Parameter]:
        """Env-contract key -> the secret or parameter that fills it on AWS."""
        items: list[Secret | Parameter] = [*self.secrets, *self.parameters]
        return {item.env: item for item in items}

    def consistency_problems(self) -> list[tuple[str, str]]:
        """Cross-table checks: (dotted key, what is wrong) for each inconsistency."""
        errors: list[tuple[str, str]] = []
        redis_users = self.redis.users
        for name, service in self.services.items():
            if service.redis_user not in redis_users:
                errors.append(
                    (
                        f"services.{name}.redis_user",
                        f"{service.redis_user!r} is not a Redis user; users come from "
                        f"redis.namespaces[].users: {sorted(redis_users)}",
                    )
                )
        if self.console.enabled and "console" in self.services:
            errors.append(("services.console", "`console` is the local web console's name ([console])"))
        ports: dict[int, str] = {}
        for component, port in self.ports().items():
            if port in ports:
                errors.append((port_key(component), f"port {port} is also used by {ports[port]}"))
            ports[port] = component
        env_seen: dict[str, str] = {}
        groups: tuple[tuple[str, tuple[Secret | Parameter, ...]], ...] = (
            ("secrets", self.secrets),
            ("parameters", self.parameters),
        )
        for kind, items in groups:
            for i, item in enumerate(items):
                key = f"{kind}[{i}]"
                if item.env in env_seen:
                    errors.append((f"{key}.env", f"{item.env} is already filled by {env_seen[item.env]}"))
                env_seen[item.env] = key
                for ref in _REFERENCE.findall(item.value or ""):
                    if not self.is_reference(ref):
                        errors.append(
                            (f"{key}.value", f"unknown reference ${{{ref}}}; known: {self.reference_keys()}")
                        )
        return errors

    def reference_keys(self) -> list[str]:
        """The `${...}` keys a secret or parameter value may refer to."""
        keys = [f"postgres.roles.{role}.url" for role in self.postgres.roles]
        keys += [f"redis.users.{user}.url" for user in self.redis.users]
        keys += ["s3.bucket", "ses.sender", "ses.domain", "ses.configuration_set"]
        keys += ["cognito.user_pool_id", "cognito.client_id", "cognito.client_secret", "project.region"]
        return keys

    def is_reference(self, key: str) -> bool:
        return key in self.reference_keys()


def port_key(component: str) -> str:
    """The dotted topology key that sets `component`'s port (for error messages)."""
    return {
        "postgres": "postgres.port",
        "redis": "redis.port",
        "aws": "aws.port",
        "console": "console.port",
    }.get(component, f"services.{component}.port")


def resolve_references(template: str, values: Mapping[str, str]) -> str:
    """Fill `${dotted.key}` references from `values` (a missing key is a TopologyError)."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise TopologyError(
                f"reference ${{{key}}} has no value in this stack", hint="run `harness up` first"
            )
        return values[key]

    return _REFERENCE.sub(fill, template)


def find_topology_file(start: Path | None = None) -> Path:
    """The topology file: `$HARNESS_TOPOLOGY`, else `topology.toml` in the current dir or a parent."""
    import os

    if explicit := os.environ.get("HARNESS_TOPOLOGY"):
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / DEFAULT_TOPOLOGY_FILE
        if candidate.is_file():
            return candidate
    raise TopologyError(
        f"no {DEFAULT_TOPOLOGY_FILE} found in {here} or any parent directory",
        hint="run from the project checkout, or set HARNESS_TOPOLOGY=/path/to/topology.toml",
    )


def load_topology(path: Path | str | None = None, env: str = DEFAULT_ENV) -> Topology:
    """Load, merge the `[environments.<env>]` overrides, resolve name placeholders and validate."""
    source = Path(path) if path is not None else find_topology_file()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(f"{source}: cannot read the topology file ({exc.strerror})") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(
            f"{source}: not valid TOML: {exc}", hint="check quoting and brackets there"
        ) from exc
    return topology_from_dict(raw, env=env, source=source, text=text)


def topology_from_dict(
    raw: Mapping[str, Any], *, env: str = DEFAULT_ENV, source: Path | None = None, text: str = ""
) -> Topology:
    src = source or Path(DEFAULT_TOPOLOGY_FILE)
    data = copy.deepcopy(dict(raw))
    environments = data.pop("environments", {})
    if not isinstance(environments, dict):
        raise TopologyError(f"{src}: environments: expected a table of [environments.<name>] overrides")
    if env not in environments and env != DEFAULT_ENV:
        known = ", ".join(sorted(environments)) or "none"
        raise TopologyError(
            f"{src}: environments.{env}: no such environment (declared: {known})",
            hint=f"add an [environments.{env}] table, even an empty one",
        )
    override = environments.get(env, {})
    if not isinstance(override, dict):
        raise TopologyError(f"{src}: environments.{env}: expected a table")
    merged = _deep_merge(data, override)
    project = merged.get("project", {})
    if not isinstance(project, dict):
        raise TopologyError(f"{src}: project: expected a table with name, region and account_id")
    names = {
        "project": project.get("name"),
        "env": env,
        "account_id": project.get("account_id"),
        "region": project.get("region"),
    }
    merged = _fill_names(merged, {k: str(v) for k, v in names.items() if v is not None})
    merged["env"] = env
    merged["source"] = src
    try:
        topology = Topology.model_validate(merged)
    except ValidationError as exc:
        problems = [describe_error(error) for error in exc.errors()]
        raise TopologyError(format_problems(problems, src, text, env, override)) from None
    if inconsistencies := topology.consistency_problems():
        located = [(tuple(split_dotted(key)), message) for key, message in inconsistencies]
        raise TopologyError(format_problems(located, src, text, env, override))
    return topology


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _fill_names(node: Any, names: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        for key, value in names.items():
            node = node.replace("{" + key + "}", value)
        return node
    if isinstance(node, dict):
        return {k: _fill_names(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill_names(v, names) for v in node]
    return node
