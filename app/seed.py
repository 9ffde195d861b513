"""Load seed data idempotently: `python -m app.seed seed/seed.yaml`.

Cognito users are created through the admin API with the file's permanent passwords (local only) and put in
the group of their highest role. Tenants, memberships and catalog items are written as `app_user`, each in
its own tenant's RLS context: seed tenants have fixed ids (uuid5 of the slug), so no lookup across tenants is
ever needed and the migrator's RLS bypass is not used.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from app.aws import cognito_client
from app.db import tenant_transaction_sync
from app.models import CatalogItem, Membership, Tenant
from app.settings import get_settings
from app.tenancy import ROLE_RANK, SLUG_PATTERN

SEED_NAMESPACE = uuid.UUID("6f1c3a52-8f0e-4d7b-9a51-2b7c9e4d1a00")
GROUP_OF_ROLE = {"owner": "Owner", "admin": "Admin", "member": "Member"}


class _Strict(BaseModel):
    """A key the seed does not know is an error (a typo would otherwise drop data silently)."""

    model_config = ConfigDict(extra="forbid")


class SeedUser(_Strict):
    email: str
    password: str = Field(min_length=12)
    name: str | None = None


class SeedMember(_Strict):
    email: str
    role: Literal["owner", "admin", "member"]


class SeedCatalogItem(_Strict):
    sku: str
    name: str
    price_cents: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    description: str = ""
    active: bool = True


class SeedTenant(_Strict):
    slug: str = Field(pattern=SLUG_PATTERN.pattern)
    name: str
    members: list[SeedMember] = []
    catalog: list[SeedCatalogItem] = []


class SeedFile(_Strict):
    users: list[SeedUser]
    tenants: list[SeedTenant]

    @model_validator(mode="after")
    def _consistent(self) -> SeedFile:
        """Each user, tenant, member and SKU once, every member a seeded user: a second entry would silently
        rename a tenant or change a member's role (harness/seedfile.py says the same with file:line)."""
        _once("users", [u.email.lower() for u in self.users], "user")
        _once("tenants", [t.slug for t in self.tenants], "tenant")
        known = {u.email.lower() for u in self.users}
        for tenant in self.tenants:
            _once(f"tenants[{tenant.slug}].members", [m.email.lower() for m in tenant.members], "member")
            _once(f"tenants[{tenant.slug}].catalog", [c.sku for c in tenant.catalog], "SKU")
            for member in tenant.members:
                if member.email.lower() not in known:
                    raise ValueError(f"tenants[{tenant.slug}].members: {member.email} is not under users")
        return self


def _once(where: str, values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{where}: {what} {value!r} is listed twice (merge the two entries)")
        seen.add(value)


def seed_tenant_id(slug: str) -> uuid.UUID:
    return uuid.uuid5(SEED_NAMESPACE, slug)


def highest_roles(seed: SeedFile) -> dict[str, str]:
    """The highest role of each user across tenants (Cognito groups are pool-wide)."""
    roles: dict[str, str] = {}
    for tenant in seed.tenants:
        for member in tenant.members:
            email = member.email.lower()
            if ROLE_RANK[member.role] > ROLE_RANK.get(roles.get(email, ""), 0):
                roles[email] = member.role
    return roles


def ensure_cognito_user(user: SeedUser, group: str | None) -> tuple[str, bool]:
    """(sub, created). Idempotent: resets the password and group membership every run."""
    settings = get_settings()
    cognito: Any = cognito_client()
    pool = settings.cognito_user_pool_id
    email = user.email.lower()
    created = False
    try:
        found = cognito.admin_get_user(UserPoolId=pool, Username=email)
    except cognito.exceptions.UserNotFoundException:
        attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
        if user.name:
            attributes.append({"Name": "name", "Value": user.name})
        found = cognito.admin_create_user(
            UserPoolId=pool, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
        )["User"]
        created = True
    cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=user.password, Permanent=True)
    if group:
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)
    attributes = found.get("UserAttributes") or found.get("Attributes") or []
    sub = next((a["Value"] for a in attributes if a["Name"] == "sub"), None)
    if sub is None:
        raise RuntimeError(f"Cognito returned no `sub` for {email}")
    return str(sub), created


def seed_tenant(tenant: SeedTenant, subs: dict[str, str]) -> uuid.UUID:
    tenant_id = seed_tenant_id(tenant.slug)
    with tenant_transaction_sync(tenant_id) as db:
        db.execute(
            insert(Tenant)
            .values(id=tenant_id, slug=tenant.slug, name=tenant.name)
            .on_conflict_do_update(index_elements=[Tenant.id], set_={"name": tenant.name})
        )
        for member in tenant.members:
            email = member.email.lower()
            statement = insert(Membership).values(
                id=uuid.uuid4(), tenant_id=tenant_id, user_sub=subs[email], email=email, role=member.role
            )
            # Keyed by email: a re-created Cognito user (new sub) takes over its seeded membership.
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=[Membership.tenant_id, Membership.email],
                    set_={"user_sub": statement.excluded.user_sub, "role": statement.excluded.role},
                )
            )
        for item in tenant.catalog:
            statement = insert(CatalogItem).values(id=uuid.uuid4(), tenant_id=tenant_id, **item.model_dump())
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=[CatalogItem.tenant_id, CatalogItem.sku],
                    set_={
                        k: statement.excluded[k]
                        for k in ("name", "price_cents", "currency", "description", "active")
                    },
                )
            )
    return tenant_id


def forget_catalog_summaries(tenant_ids: list[uuid.UUID]) -> None:
    """Best effort: the seed may have changed catalogs whose AI summary is cached."""
    import redis

    from app import keys

    try:
        client = redis.Redis.from_url(get_settings().redis_url, socket_timeout=2)
        client.delete(*(keys.ai_catalog(t) for t in tenant_ids))
    except redis.RedisError as exc:
        print(f"note: cached catalog summaries not cleared ({exc})", file=sys.stderr)


def load(path: Path) -> SeedFile:
    try:
        return SeedFile.model_validate(yaml.safe_load(path.read_text()))
    except FileNotFoundError:
        raise SystemExit(f"seed file not found: {path}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise SystemExit(f"{path}: invalid seed file:\n{exc}") from None


LISTING_MARK = "seed-tenants: "  # `--list`: one line, read by `harness tenant` (harness/devloop/tenants.py)


def listing(seed: SeedFile) -> dict[str, Any]:
    """What `--list` prints: each seeded tenant's slug, id, name and member emails, and every seed user."""
    return {
        "tenants": [
            {
                "slug": t.slug,
                "id": str(seed_tenant_id(t.slug)),
                "name": t.name,
                "members": [m.email.lower() for m in t.members],
            }
            for t in seed.tenants
        ],
        "users": [u.email.lower() for u in seed.users],
    }


def set_exact_groups(email: str, group: str | None) -> None:
    """The user is in `group` only (`--tenant` puts a tenant's users back exactly as seeded)."""
    cognito: Any = cognito_client()
    pool = get_settings().cognito_user_pool_id
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool, Username=email).get("Groups", [])
    for found in groups:
        if found["GroupName"] != group:
            cognito.admin_remove_user_from_group(
                UserPoolId=pool, Username=email, GroupName=found["GroupName"]
            )
    cognito.admin_enable_user(UserPoolId=pool, Username=email)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.seed", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="seed file, e.g. seed/seed.yaml")
    parser.add_argument("--list", action="store_true", help="print the seeded tenants as JSON and exit")
    parser.add_argument("--tenant", metavar="SLUG", help="seed only this tenant and its users (exact groups)")
    args = parser.parse_args(argv)
    if args.list:
        print(LISTING_MARK + json.dumps(listing(load(args.path))))
        return 0
    settings = get_settings()
    if settings.app_env != "local":
        print(
            f"refusing to seed: APP_ENV={settings.app_env} (the seed sets known passwords)", file=sys.stderr
        )
        return 2
    seed = load(args.path)
    roles = highest_roles(seed)
    tenants, users = seed.tenants, seed.users
    if args.tenant is not None:
        tenants = [t for t in seed.tenants if t.slug == args.tenant]
        if not tenants:
            known = ", ".join(t.slug for t in seed.tenants)
            print(f"{args.path}: no tenant {args.tenant!r} in the seed (seeded: {known})", file=sys.stderr)
            return 3
        members = {m.email.lower() for m in tenants[0].members}
        users = [u for u in seed.users if u.email.lower() in members]
    subs: dict[str, str] = {}
    created = 0
    for user in users:
        email = user.email.lower()
        group = GROUP_OF_ROLE.get(roles.get(email, ""))
        subs[email], was_created = ensure_cognito_user(user, group)
        if args.tenant is not None:
            set_exact_groups(email, group)
        created += was_created
    tenant_ids: list[uuid.UUID] = []
    for tenant in tenants:
        try:
            tenant_ids.append(seed_tenant(tenant, subs))
        except IntegrityError as exc:
            print(
                f"{args.path}: tenant {tenant.slug!r}: the slug belongs to a tenant this seed did not create "
                f"(reset the database or rename it in the seed file)\n  {exc.orig}",
                file=sys.stderr,
            )
            return 1
    forget_catalog_summaries(tenant_ids)
    items = sum(len(t.catalog) for t in tenants)
    print(
        f"seeded {len(users)} users ({created} new), {len(tenants)} tenants, "
        f"{sum(len(t.members) for t in tenants)} memberships, {items} catalog items"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
