"""Actors and tenants, created fresh for every run (unique ids) and removed afterwards.

The same path on both targets, through the public API wherever the app has one:
1. each user: a Cognito user (admin API, permanent random password), signed in through the app client;
2. each tenant: created by its owner with `POST /api/v1/tenants` (slug `<key>-<run id>`);
3. every other member: invited by the owner (`POST /api/v1/invites`) and accepting (`POST /invites/accept`)
   with the invite token. The token is the one the invite email carries; rather than read it from the mail
   (impossible on a deployed stack, where SES events carry no body), it is minted exactly as the app does
   (app/invite_tokens.py: HS256 over {purpose, tid, iid, exp} with APP_SECRET_KEY).

Cleanup: Cognito users always; tenants' objects (S3) and Redis keys where the target reaches them; the tenant
rows (cascading to everything of the tenant) locally as app_user in each tenant's RLS context, and on a
deployed target through the app's own `DELETE /api/v1/tenant` as the tenant's owner — for the declared tenants
and for those the run's signed-in actors created themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt

from harness.errors import ScenarioError
from harness.scenarios.http import ApiClient, Exchange
from harness.scenarios.identity import Tokens, generate_password
from harness.scenarios.targets import Target

INVITE_PURPOSE = "invite"


class SetupError(ScenarioError):
    """Creating a run's actors or tenants failed; `exchange` is the API call that failed, if any."""

    def __init__(self, message: str, exchange: Exchange | None = None, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exchange = exchange


@dataclass
class Actor:
    """A user of this run: its Cognito identity, and its membership when it belongs to a declared tenant."""

    key: str
    email: str
    password: str = field(repr=False)
    sub: str
    name: str | None
    tenant: str | None = None
    role: str | None = None
    tokens: Tokens | None = field(default=None, repr=False)
    _sign_in: Callable[[Actor], Tokens] | None = field(default=None, repr=False)

    def access_token(self) -> str:
        """The actor's access token, signing in on first use."""
        if self.tokens is None:
            if self._sign_in is None:
                raise ScenarioError(f"actor {self.key} cannot sign in")
            self.tokens = self._sign_in(self)
        return self.tokens.access

    def variables(self) -> dict[str, Any]:
        return {"email": self.email, "sub": self.sub, "name": self.name, "role": self.role}


@dataclass
class TenantHandle:
    key: str
    id: str
    slug: str
    name: str
    users: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, user: str) -> Actor:
        return self.users[user]

    def variables(self) -> dict[str, Any]:
        return {"id": self.id, "slug": self.slug, "name": self.name}


def tenant_slug(key: str, run_id: str) -> str:
    return f"{key.replace('_', '-')}-{run_id}"


def mint_invite_token(secret_key: str, tenant_id: str, invite_id: str, expires_at: str) -> str:
    """The token of an invite email (see the module docstring)."""
    expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    claims = {"purpose": INVITE_PURPOSE, "tid": tenant_id, "iid": invite_id, "exp": int(expiry.timestamp())}
    return jwt.encode(claims, secret_key, algorithm="HS256")


class ActorFactory:
    """Creates a run's users and tenants on a target, remembers them, and removes them in `cleanup()`."""

    def __init__(
        self,
        target: Target,
        api: ApiClient,
        run_id: str,
        on_secret: Callable[[str], None] = lambda secret: None,
    ) -> None:
        self.target = target
        self.api = api
        self.run_id = run_id
        self.on_secret = on_secret
        self.users: list[Actor] = []
        self.tenants: list[TenantHandle] = []
        self._lock = threading.Lock()

    # -- creation ----------------------------------------------------------------------------------------
    def user(self, key: str, *, name: str | None = None) -> Actor:
        """A fresh Cognito user (not signed in yet); its address is one the target's inbox observes."""
        label = f"{key.replace('.', '-')}-{self.run_id}"
        email = self._address(label)
        password = generate_password()
        self.on_secret(password)
        sub = self.target.identity.create_user(email, password, name)
        actor = Actor(key, email, password, sub, name, _sign_in=self._sign_in)
        with self._lock:
            self.users.append(actor)
        return actor

    def tenant(
        self, key: str, *, name: str | None = None, users: Mapping[str, tuple[str, str | None]] | None = None
    ) -> TenantHandle:
        """A tenant created by its owner, then each other user invited and accepted with its role.

        `users`: user key -> (role, display name). Without an owner among them, an extra owner is made.
        """
        members = dict(users or {})
        owners = [u for u, (role, _) in members.items() if role == "owner"]
        if not owners:
            members = {"_owner": ("owner", None), **members}
            owners = ["_owner"]
        actors = {user: self.user(f"{key}.{user}", name=display) for user, (_, display) in members.items()}
        for user, (role, _) in members.items():
            actors[user].tenant, actors[user].role = key, role
        owner = actors[owners[0]]
        slug = tenant_slug(key, self.run_id)
        display_name = name or key.replace("_", " ").title()
        created = self._call(
            "create the tenant", owner, "POST", "/api/v1/tenants", json={"slug": slug, "name": display_name}
        )
        handle = TenantHandle(key, str(created["id"]), slug, display_name, actors)
        with self._lock:
            self.tenants.append(handle)
        for user, (role, _) in members.items():
            if user != owners[0]:
                self._join(handle, owner, actors[user], role)
        return handle

    def _join(self, tenant: TenantHandle, owner: Actor, member: Actor, role: str) -> None:
        invite = self._call(
            f"invite {member.key}", owner, "POST", "/api/v1/invites",
            tenant=tenant.slug, json={"email": member.email, "role": role},
        )  # fmt: skip
        token = mint_invite_token(
            self.target.app_secret_key, tenant.id, str(invite["id"]), invite["expires_at"]
        )
        self.on_secret(token)
        self._call(
            f"accept the invite of {member.key}",
            member,
            "POST",
            "/api/v1/invites/accept",
            json={"token": token},
        )

    def _call(
        self, what: str, actor: Actor, method: str, path: str, *, tenant: str | None = None, json: Any = None
    ) -> dict[str, Any]:
        exchange = self.api.send(method, path, token=actor.access_token(), tenant_slug=tenant, json_body=json)
        if exchange.status is None or not 200 <= exchange.status < 300:
            problem = exchange.error or f"{exchange.status} {exchange.response_body[:300]}"
            raise SetupError(f"setup: could not {what} ({method} {path} as {actor.key}): {problem}", exchange)
        body = exchange.outcome()["json"]
        return body if isinstance(body, dict) else {}

    def _address(self, label: str) -> str:
        if self.target.inbox is not None:
            return self.target.inbox.address_for(label)
        return f"{label}@scenarios.test"

    def _sign_in(self, actor: Actor) -> Tokens:
        tokens = self.target.identity.sign_in(actor.email, actor.password)
        self.on_secret(tokens.access)
        self.on_secret(tokens.id)
        if tokens.refresh:
            self.on_secret(tokens.refresh)
        return tokens

    # -- cleanup -----------------------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Remove what this factory created (best effort); returns the problems met."""
        problems: list[str] = []
        target = self.target
        tenant_ids = {t.id for t in self.tenants}
        subs = [u.sub for u in self.users]
        owned: dict[str, tuple[str, Actor]] = {}  # tenant id -> (slug, an owner able to delete it)
        if target.database is not None and subs:
            try:
                tenant_ids |= target.database.tenants_of(subs)  # also the tenants a scenario created itself
            except Exception as exc:
                problems.append(f"listing the run's tenants: {exc}")
        elif target.database is None:
            owned = self._owned_tenants(problems)
            tenant_ids |= set(owned)
        for tenant_id in sorted(tenant_ids):
            if target.objects is not None:
                try:
                    target.objects.delete_prefix(target.objects.tenant_prefix(tenant_id))
                except Exception as exc:
                    problems.append(f"deleting objects of tenant {tenant_id}: {exc}")
            if target.database is not None:
                try:
                    target.database.delete_tenant(tenant_id)
                except Exception as exc:
                    problems.append(f"deleting tenant {tenant_id}: {exc}")
            elif tenant_id in owned and (problem := self._delete_through_api(tenant_id, *owned[tenant_id])):
                problems.append(problem)
        if target.redis is not None and (tenant_ids or subs):
            prefixes = [ns.prefix for ns in target.topology.redis.namespaces]
            try:
                target.redis.delete_containing([*sorted(tenant_ids), *subs], prefixes)
            except Exception as exc:
                problems.append(f"deleting Redis keys of the run: {exc}")
        for user in self.users:
            try:
                target.identity.delete_user(user.email)
            except Exception as exc:
                problems.append(f"deleting Cognito user {user.email}: {exc}")
        self.users.clear()
        self.tenants.clear()
        return problems

    def _owned_tenants(self, problems: list[str]) -> dict[str, tuple[str, Actor]]:
        """The run's tenants and an owner of each: the declared ones (their owner, unless a step deleted them
        or changed its role) and any a signed-in actor owns (only a signed-in actor can have created one)."""
        owned: dict[str, tuple[str, Actor]] = {}
        for handle in self.tenants:
            owner = next((a for a in handle.users.values() if a.role == "owner"), None)
            if owner is not None:
                owned[handle.id] = (handle.slug, owner)
        for actor in self.users:
            if actor.tokens is None:
                continue
            exchange = self.api.send("GET", "/api/v1/tenants", token=actor.tokens.access)
            listing = exchange.outcome()["json"] if exchange.status == 200 else None
            if not isinstance(listing, list):
                problems.append(f"listing the tenants of {actor.key}: {exchange.error or exchange.status}")
                continue
            for tenant in listing:
                if isinstance(tenant, dict) and tenant.get("role") == "owner":
                    owned[str(tenant["id"])] = (str(tenant["slug"]), actor)
        return owned

    def _delete_through_api(self, tenant_id: str, slug: str, owner: Actor) -> str | None:
        """Delete a tenant as its owner; a 403 for "not a member" means a step already deleted it."""
        try:
            token = owner.access_token()
        except Exception as exc:
            return f"deleting tenant {slug} ({tenant_id}): cannot sign in {owner.key}: {exc}"
        exchange = self.api.send(
            "DELETE", "/api/v1/tenant", token=token, tenant_slug=slug, json_body={"confirm": slug}
        )
        if exchange.status == 202:
            return None
        body = exchange.outcome()["json"]
        message = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
        if exchange.status == 403 and "not a member" in message:
            return None
        problem = exchange.error or f"{exchange.status} {exchange.response_body[:200]}"
        return f"deleting tenant {slug} ({tenant_id}) through the API as {owner.key}: {problem}"
