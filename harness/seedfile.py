"""The seed file (`seed/seed.yaml`) checked like the topology before the app's seed step runs.

The app's loader (`python -m app.seed FILE`) applies what it is given; the harness checks the file first, so
a wrong seed changes nothing: `harness up`, `harness seed`, `harness tenant reset` and `harness db reset`
refuse it with every problem at once, each as `file:line: dotted.key: what is wrong`:

- YAML syntax errors and duplicate mapping keys (which YAML would silently resolve to the last one);
- unknown keys (typos), wrong types (strict: `price_cents: "12"` or `active: 1` are mistakes), values the app
  or its columns refuse (slug shape, currency code, a price beyond the column's int4, a password shorter
  than the pool's minimum);
- a tenant slug given twice (the second would silently rename the first and change its members' roles), a
  user email given twice (case-insensitively: Cognito usernames are lowercased), a member listed twice in a
  tenant, a SKU listed twice in a tenant;
- a member that is not under `users` (a reference to a user that does not exist).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"  # app/roles.py's SLUG_PATTERN
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
INT4_MAX = 2**31 - 1  # catalog_items.price_cents is an integer column
SEED_FILE_SUFFIXES = (".yaml", ".yml")


class SeedError(HarnessError):
    """The seed file is malformed or inconsistent (nothing was applied)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SeedUser(_Model):
    email: Annotated[str, Field(pattern=EMAIL_PATTERN)]
    password: Annotated[str, Field(min_length=12, repr=False)]
    name: str | None = None


class SeedMember(_Model):
    email: Annotated[str, Field(pattern=EMAIL_PATTERN)]
    role: Literal["owner", "admin", "member"]


class SeedCatalogItem(_Model):
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1)]
    price_cents: Annotated[int, Field(ge=0, le=INT4_MAX)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    description: str = ""
    active: bool = True


class SeedTenant(_Model):
    slug: Annotated[str, Field(pattern=SLUG_PATTERN)]
    name: Annotated[str, Field(min_length=1)]
    members: list[SeedMember] = []
    catalog: list[SeedCatalogItem] = []


class SeedFile(_Model):
    users: list[SeedUser]
    tenants: list[SeedTenant]


Loc = tuple[int | str, ...]


def check_seed_file(path: Path) -> SeedFile:
    """The validated seed, or `SeedError` listing every problem with its file:line and dotted key."""
    from harness.errors import ScenarioError
    from harness.scenarios.source import YamlDocument, dotted, load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"{path}: cannot read the seed file ({exc.strerror})") from exc
    try:
        document: YamlDocument = load_yaml(path, text)
    except ScenarioError as exc:
        raise SeedError(exc.message, hint=exc.hint) from None
    try:
        seed = SeedFile.model_validate(document.data)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
    else:
        problems = list(_consistency_problems(seed))
    if not problems:
        return seed
    lines = [f"{path}: invalid seed file ({len(problems)} problem(s)); nothing was applied:"]
    for loc, message in problems:
        line = document.key_line(loc) if message.startswith("unknown key") else document.line_of(loc)
        lines.append(f"  {path}{':' + str(line) if line else ''}: {dotted(loc)}: {message}")
    raise SeedError("\n".join(lines), hint="the seed's keys are described in seed/seed.yaml and docs/app.md")


def _describe(error: Any) -> tuple[Loc, str]:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return loc, "unknown key (typo?)"
    if error["type"] == "missing":
        return loc, "required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    # never a password, and never a whole mapping or list (it may hold one)
    shown = (
        "***"
        if loc and loc[-1] == "password"
        else f"a {type(value).__name__}"
        if isinstance(value, dict | list)
        else repr(value)
    )
    return loc, f"{message} (got {shown})" if "input" in error else message


def _consistency_problems(seed: SeedFile) -> Iterator[tuple[Loc, str]]:
    users: dict[str, int] = {}
    for i, user in enumerate(seed.users):
        email = user.email.lower()
        if email in users:
            yield (
                ("users", i, "email"),
                f"{user.email} is already users[{users[email]}] (emails are case-insensitive)",
            )
        users.setdefault(email, i)
    slugs: dict[str, int] = {}
    for t, tenant in enumerate(seed.tenants):
        at: Loc = ("tenants", t)
        if tenant.slug in slugs:
            yield (
                (*at, "slug"),
                (
                    f"tenant {tenant.slug!r} is already tenants[{slugs[tenant.slug]}]: a second entry would rename "
                    "it and change its members' roles; merge the two"
                ),
            )
        slugs.setdefault(tenant.slug, t)
        yield from _duplicates(at, "members", [m.email.lower() for m in tenant.members], "member")
        yield from _duplicates(at, "catalog", [c.sku for c in tenant.catalog], "SKU")
        for m, member in enumerate(tenant.members):
            if member.email.lower() not in users:
                yield (
                    (*at, "members", m, "email"),
                    (f"{member.email} is not under users (a member must be a seeded user; add it there)"),
                )


def _duplicates(at: Loc, key: str, values: Sequence[str], what: str) -> Iterator[tuple[Loc, str]]:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            field = "email" if what == "member" else "sku"
            yield (*at, key, i, field), f"{what} {value!r} is already {key}[{seen[value]}] of this tenant"
        seen.setdefault(value, i)


def seed_files_of(argv: Sequence[str], project_dir: Path) -> list[Path]:
    """The seed files an app command names (its arguments ending in .yaml/.yml that exist)."""
    found = []
    for arg in argv[1:]:
        if arg.endswith(SEED_FILE_SUFFIXES):
            path = Path(arg) if Path(arg).is_absolute() else project_dir / arg
            if path.is_file():
                found.append(path)
    return found
