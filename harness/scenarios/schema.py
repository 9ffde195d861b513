"""The typed schema of a scenario file (docs/scenarios.md describes every key with examples).

```yaml
name: order confirmation reaches the buyer
targets: [local, deployed]
tenants:
  acme: {users: {owner: {role: owner}, buyer: {role: member}}}
steps:
  - as: acme.buyer
    request: POST /api/v1/orders
    json: {items: [{sku: TSHIRT, qty: 2}]}
    expect: {status: 201, json: {id: {type: string}}}
    save: {order_id: json.id}
  - expect_email: {to: acme.buyer, subject_contains: "Order ${order_id}", within: 15s}
```

A step is a mapping with exactly one *kind* key (`request`, `fetch`, `upload`, `sign_in`, `set`, or a probe:
`expect_email`, `expect_object`, `expect_rows`, `expect_redis`, `expect_task`) plus the keys that kind takes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from harness.scenarios.matchers import Expected, Matcher, show
from harness.scenarios.paths import PathSyntaxError, parse_path
from harness.scenarios.templates import references

TARGETS = ("local", "deployed")
TargetName = Literal["local", "deployed"]
Role = Literal["owner", "admin", "member"]
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")]
"""A tenant, user or variable name: lowercase letters, digits and `_`, starting with a letter."""

ActorRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,23}(\.[a-z][a-z0-9_]{0,23})?$")]
"""`tenant.user` for a member of a declared tenant, or `user` for a user declared under `users:`."""


def parse_duration(value: Any) -> float:
    """`10s`, `500ms`, `2m`, `1.5s` or a number of seconds."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "duration", "expected a duration like 10s, 500ms or 2m (got {value})", {"value": show(value)}
        )
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", value)):
        seconds = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    else:
        raise PydanticCustomError(
            "duration", "expected a duration like 10s, 500ms or 2m (got {value})", {"value": show(value)}
        )
    if not 0 < seconds <= 600:
        raise PydanticCustomError(
            "duration", "a duration must be more than 0 and at most 10m (got {value})", {"value": show(value)}
        )
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _status_codes(value: Any) -> tuple[int, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    codes: list[int] = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise PydanticCustomError(
                "status",
                "expected an HTTP status code (an integer 100-599) or a list of them (got {value})",
                {"value": show(value)},
            )
        codes.append(item)
    if not codes:
        raise PydanticCustomError("status", "give at least one status code", {})
    return tuple(codes)


StatusCodes = Annotated[tuple[int, ...], BeforeValidator(_status_codes)]


def _json_paths(value: dict[str, Any]) -> dict[str, Any]:
    for path in value:
        try:
            parse_path(path)
        except PathSyntaxError as exc:
            raise ValueError(f"bad path {path!r}: {exc}") from None
    return value


def _save_paths(value: dict[str, str]) -> dict[str, str]:
    for name, path in value.items():
        try:
            parts = parse_path(path)
        except PathSyntaxError as exc:
            raise ValueError(f"{name}: bad path {path!r}: {exc}") from None
        if not parts:
            raise ValueError(f"{name}: say what to save, e.g. json.id, headers.location, status")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --- who --------------------------------------------------------------------------------------------------


class UserSpec(_Model):
    """A Cognito user created fresh for each run; under a tenant it needs the role of its membership."""

    role: Role | None = None
    name: str | None = Field(default=None, description="display name (Cognito `name` attribute)")


class TenantSpec(_Model):
    """A tenant created fresh for each run (slug `<key>-<run id>`), its owner first, then the others invited."""

    name: str | None = Field(default=None, description="display name; default: the key, capitalised")
    users: dict[Name, UserSpec] = {}


# --- expectations -----------------------------------------------------------------------------------------


class HttpExpect(_Model):
    status: StatusCodes | None = None
    headers: dict[str, Expected] = {}
    json_: Annotated[dict[str, Expected], BeforeValidator(lambda v: _json_paths(v) if isinstance(v, dict) else v)] = Field(default={}, alias="json")  # fmt: skip
    body: Expected = None

    @field_validator("headers")
    @classmethod
    def _lower(cls, headers: dict[str, Any]) -> dict[str, Any]:
        return {name.lower(): value for name, value in headers.items()}


class Repeat(_Model):
    """Send the same request until the response matches `until` (at most `max` times)."""

    until: HttpExpect
    max: Annotated[int, Field(ge=1, le=100_000)] = 1000


SavePaths = Annotated[
    dict[Name, str], BeforeValidator(lambda v: _save_paths(v) if isinstance(v, dict) else v)
]


class _Step(_Model):
    name: str | None = Field(default=None, description="label in reports")
    only: tuple[TargetName, ...] | None = Field(
        default=None, description="run this step on these targets only"
    )
    save: SavePaths = {}

    @field_validator("only")
    @classmethod
    def _only(cls, only: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if only is not None and not only:
            raise ValueError("list at least one target (or remove `only`)")
        return only


def _request_line(value: str) -> str:
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"\s*([A-Za-z]+)\s+(\S+)\s*", value)
    if not match or match.group(1).upper() not in METHODS:
        raise PydanticCustomError(
            "request_line",
            "expected 'METHOD /path' with METHOD one of {methods} (got {value})",
            {"methods": ", ".join(METHODS), "value": show(value)},
        )
    return f"{match.group(1).upper()} {match.group(2)}"


RequestLine = Annotated[str, BeforeValidator(_request_line)]


class RequestStep(_Step):
    """An API request, as an actor (bearer token from Cognito) and for a tenant (header or subdomain)."""

    request: RequestLine
    as_: ActorRef | None = Field(default=None, alias="as")
    tenant: str | None = Field(default=None, description="a declared tenant, or `none`; default: the actor's")
    tenant_slug: str | None = None
    tenant_via: Literal["header", "subdomain"] = "header"
    headers: dict[str, str] = {}
    query: dict[str, Any] = {}
    json_: Any = Field(default=None, alias="json")
    body: str | None = None
    expect: HttpExpect = HttpExpect()
    within: Duration | None = None
    repeat: Repeat | None = None

    @property
    def method(self) -> str:
        return self.request.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.request.split(" ", 1)[1]

    @model_validator(mode="after")
    def _consistent(self) -> RequestStep:
        if not (self.path.startswith("/") or self.path.startswith("${")):
            raise ValueError(f"the path must start with '/' (got {self.path!r}); use `fetch` for other URLs")
        if "json" in self.model_fields_set and self.body is not None:
            raise ValueError("give `json` or `body`, not both")
        if self.tenant is not None and self.tenant_slug is not None:
            raise ValueError("give `tenant` or `tenant_slug`, not both")
        if self.within is not None and self.repeat is not None:
            raise ValueError("give `within` or `repeat`, not both")
        if self.within is not None and self.method not in SAFE_METHODS:
            raise ValueError(
                f"`within` re-sends the request until it matches; {self.method} is not safe to repeat "
                "(poll with a GET step instead)"
            )
        return self


class FetchStep(_Step):
    """A plain HTTP request to a full URL (a presigned S3 URL), without a token."""

    fetch: str
    headers: dict[str, str] = {}
    expect: HttpExpect = HttpExpect()
    within: Duration | None = None

    @property
    def method(self) -> str:
        parts = self.fetch.split(None, 1)
        return parts[0].upper() if len(parts) == 2 else "GET"

    @property
    def url(self) -> str:
        parts = self.fetch.split(None, 1)
        return parts[1].strip() if len(parts) == 2 else self.fetch.strip()

    @model_validator(mode="after")
    def _method(self) -> FetchStep:
        if self.method not in METHODS:
            raise ValueError(f"expected 'URL' or 'METHOD URL' with METHOD one of {', '.join(METHODS)}")
        if self.within is not None and self.method not in SAFE_METHODS:
            raise ValueError(f"`within` re-sends the request; {self.method} is not safe to repeat")
        return self


class UploadFile(_Model):
    content: str
    filename: str = "upload.bin"
    content_type: str | None = None


class UploadSpec(_Model):
    url: str
    fields: Any = Field(description="the form fields of the presigned POST (a mapping or a ${variable})")
    file: UploadFile
    field_name: str = "file"


class UploadStep(_Step):
    """A browser-style form POST of a file to a presigned POST (url + fields from the API)."""

    upload: UploadSpec
    expect: HttpExpect = HttpExpect()


class SignInSpec(_Model):
    as_: ActorRef = Field(alias="as")
    password: str | None = Field(default=None, description="default: the actor's own password")
    expect: Literal["ok", "refused"] = "ok"


class SignInStep(_Step):
    """Sign in to Cognito with the app client (USER_PASSWORD_AUTH + SECRET_HASH); saves fresh tokens on ok."""

    sign_in: SignInSpec


class SetStep(_Step):
    """Set variables (values may use `${...}`)."""

    set: dict[Name, Any]


class _Probe(_Model):
    within: Duration | None = Field(default=None, description="poll until it holds or the deadline passes")


class EmailProbe(_Probe):
    to: str = Field(description="an actor (`acme.owner`) or an address")
    subject: Expected = None
    subject_contains: str | None = None
    body: Expected = None
    body_contains: str | list[str] | None = None
    extract: dict[Name, str] = Field(
        default={}, description="variable -> regex over the body (group 1 or the match)"
    )
    links: dict[Name, str] = Field(default={}, description="variable -> regex a URL in the body must match")
    count: Expected = None

    @field_validator("extract", "links")
    @classmethod
    def _regexes(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{name}: not a valid regular expression: {exc}") from None
        return patterns

    @property
    def reads_body(self) -> bool:
        given = self.model_fields_set
        return bool({"body", "body_contains", "extract", "links"} & given)


class ObjectProbe(_Probe):
    tenant: Name
    key: str | None = Field(default=None, description="full key; must lie under the tenant's prefix")
    prefix: str | None = Field(default=None, description="relative to the tenant's prefix")
    exists: bool = True
    body: Expected = None
    content_type: Expected = None
    count: Expected = None

    @model_validator(mode="after")
    def _one_of(self) -> ObjectProbe:
        if (self.key is None) == (self.prefix is None):
            raise ValueError("give exactly one of `key` (one object) or `prefix` (objects under it)")
        if self.prefix is not None and ({"body", "content_type"} & self.model_fields_set):
            raise ValueError("`body` and `content_type` check one object: use `key`")
        if self.key is not None and "count" in self.model_fields_set:
            raise ValueError("`count` counts objects under a `prefix`")
        return self


class RowsProbe(_Probe):
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


class RedisProbe(_Probe):
    key: str | None = None
    match: str | None = Field(default=None, description="a SCAN pattern, e.g. ai:quota:${tenants.acme.id}:*")
    exists: bool = True
    type: Literal["string", "hash", "list", "set", "zset"] | None = None
    value: Expected = None
    fields: dict[str, Expected] = {}
    ttl: Expected = Field(default=None, description="seconds; -1 when the key has no expiry")
    count: Expected = None

    @model_validator(mode="after")
    def _one_of(self) -> RedisProbe:
        if (self.key is None) == (self.match is None):
            raise ValueError("give exactly one of `key` (one key) or `match` (a pattern)")
        if self.match is not None and ({"value", "fields", "ttl", "type"} & self.model_fields_set):
            raise ValueError("`value`, `fields`, `ttl` and `type` check one key: use `key`")
        if self.key is not None and "count" in self.model_fields_set:
            raise ValueError("`count` counts keys matching a `match` pattern")
        return self

    @property
    def pattern(self) -> str:
        return self.key if self.key is not None else self.match or ""


class TaskProbe(_Probe):
    name: str = Field(description="the Celery task name, e.g. emails.order_confirmation")
    tenant: Name
    state: Literal["completed", "failed"] = "completed"
    count: Expected = None


class EmailStep(_Step):
    expect_email: EmailProbe


class ObjectStep(_Step):
    expect_object: ObjectProbe


class RowsStep(_Step):
    expect_rows: RowsProbe


class RedisStep(_Step):
    expect_redis: RedisProbe


class TaskStep(_Step):
    expect_task: TaskProbe


STEP_KINDS: dict[str, type[_Step]] = {
    "request": RequestStep,
    "fetch": FetchStep,
    "upload": UploadStep,
    "sign_in": SignInStep,
    "set": SetStep,
    "expect_email": EmailStep,
    "expect_object": ObjectStep,
    "expect_rows": RowsStep,
    "expect_redis": RedisStep,
    "expect_task": TaskStep,
}
PROBE_KINDS = ("expect_email", "expect_object", "expect_rows", "expect_redis", "expect_task")

# What `save:` paths may start with, per step kind (the step's outcome, see runner.py).
SAVE_ROOTS: dict[str, tuple[str, ...]] = {
    "request": ("status", "headers", "json", "body"),
    "fetch": ("status", "headers", "json", "body"),
    "upload": ("status", "headers", "json", "body"),
    "sign_in": ("access_token", "id_token"),
    "set": (),
    "expect_email": ("id", "to", "subject", "body", "source", "count", "messages"),
    "expect_object": ("key", "body", "content_type", "size", "keys", "count"),
    "expect_rows": ("rows", "count", "first"),
    "expect_redis": ("key", "value", "fields", "ttl", "type", "keys", "count"),
    "expect_task": ("id", "state", "result", "count", "tasks"),
}


def step_kind(value: Any) -> str | None:
    """The kind of a raw step mapping, or None when it has no kind key or several."""
    if isinstance(value, _Step):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    kinds = [key for key in value if key in STEP_KINDS]
    return STEP_KINDS[kinds[0]].__name__ if len(kinds) == 1 else None


Step = Annotated[
    Annotated[RequestStep, Tag("RequestStep")]
    | Annotated[FetchStep, Tag("FetchStep")]
    | Annotated[UploadStep, Tag("UploadStep")]
    | Annotated[SignInStep, Tag("SignInStep")]
    | Annotated[SetStep, Tag("SetStep")]
    | Annotated[EmailStep, Tag("EmailStep")]
    | Annotated[ObjectStep, Tag("ObjectStep")]
    | Annotated[RowsStep, Tag("RowsStep")]
    | Annotated[RedisStep, Tag("RedisStep")]
    | Annotated[TaskStep, Tag("TaskStep")],
    Discriminator(step_kind),
]


def kind_of(step: _Step) -> str:
    return next(kind for kind, cls in STEP_KINDS.items() if isinstance(step, cls))


class Scenario(_Model):
    """One scenario file."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    targets: tuple[TargetName, ...]
    vars: dict[Name, Any] = {}
    users: dict[Name, UserSpec] = Field(default={}, description="users with no membership (yet)")
    tenants: dict[Name, TenantSpec] = {}
    steps: Annotated[list[Step], Field(min_length=1)]

    @field_validator("targets")
    @classmethod
    def _targets(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        if not targets:
            raise ValueError(f"list the targets this scenario is valid on ({', '.join(TARGETS)})")
        if len(set(targets)) != len(targets):
            raise ValueError("a target is listed twice")
        return targets


def names_in(value: Any) -> list[str]:
    """The `${...}` expressions in a value (re-exported for the loader)."""
    return list(references(value))


# Every key a scenario may use anywhere: for "did you mean ...?" hints on unknown keys.
def known_keys() -> set[str]:
    keys: set[str] = set()
    models: list[type[BaseModel]] = [
        Scenario, UserSpec, TenantSpec, HttpExpect, Repeat, UploadFile, UploadSpec, SignInSpec, Matcher,
        EmailProbe, ObjectProbe, RowsProbe, RedisProbe, TaskProbe, *STEP_KINDS.values(),
    ]  # fmt: skip
    for model in models:
        for name, info in model.model_fields.items():
            keys.add(info.alias or name)
    return keys
