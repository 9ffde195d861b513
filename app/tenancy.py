"""Which tenant a request is for (subdomain or `X-Tenant`), the caller's membership in it, and role checks."""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import CurrentPrincipal, Principal, get_mfa_policy
from app.db import get_sessionmaker
from app.errors import ApiError, Forbidden
from app.roles import ROLE_RANK, SLUG_PATTERN, Role
from app.settings import get_settings

logger = logging.getLogger("app.tenancy")

# Subdomains that name the platform itself, never a tenant.
RESERVED_SUBDOMAINS = frozenset({"www", "api", "app", "admin", "static", "cdn", "mail", "auth"})

# One round trip: the membership, and the transaction's tenant set only if there is one.
RESOLVE_MEMBERSHIP_AND_SET_TENANT = text(
    "SELECT tenant_id, tenant_slug, tenant_name, role, set_config('app.tenant_id', tenant_id::text, true)"
    " FROM app_resolve_membership(:slug, :sub)"
)


class TenantRequired(ApiError):
    status_code = 400
    code = "tenant_required"


def tenant_slug_from_host(host: str | None, base_domain: str | None = None) -> str | None:
    """`acme.yourdomain.com[:port]` → `acme`; None for bare domains, IPs, reserved or invalid labels.

    With `base_domain`, only `{slug}.{base_domain}` counts; without it, the first label of a host with at
    least three labels (or of `{slug}.localhost`) does.
    """
    if not host:
        return None
    hostname = host.strip().lower().rstrip(".")
    if hostname.startswith("["):  # [v6]:port
        return None
    hostname = hostname.rsplit(":", 1)[0] if hostname.count(":") == 1 else hostname
    try:
        ipaddress.ip_address(hostname)
        return None
    except ValueError:
        pass
    labels = hostname.split(".")
    if base_domain:
        suffix = "." + base_domain.lower().strip(".")
        if not hostname.endswith(suffix):
            return None
        labels = hostname[: -len(suffix)].split(".")
        candidate = labels[0] if len(labels) == 1 else None
    elif labels[-1] == "localhost":
        candidate = labels[0] if len(labels) == 2 else None
    else:
        candidate = labels[0] if len(labels) >= 3 else None
    if candidate is None or candidate in RESERVED_SUBDOMAINS or not SLUG_PATTERN.match(candidate):
        return None
    return candidate


def requested_tenant_slug(header_value: str | None, host: str | None, base_domain: str | None) -> str:
    """The tenant named by the `X-Tenant` header or the subdomain; both present must agree."""
    from_host = tenant_slug_from_host(host, base_domain)
    from_header = header_value.strip().lower() if header_value else None
    if from_header is not None and not SLUG_PATTERN.match(from_header):
        raise TenantRequired("X-Tenant is not a valid tenant slug")
    if from_header and from_host and from_header != from_host:
        raise TenantRequired(f"X-Tenant {from_header!r} contradicts the subdomain {from_host!r}")
    slug = from_header or from_host
    if slug is None:
        raise TenantRequired("name the tenant with a `{slug}.` subdomain or an X-Tenant header")
    return slug


def role_allows(role: str, minimum: Role) -> bool:
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]


AfterCommit = Callable[[], Awaitable[None]]


@dataclass
class TenantContext:
    """A request's tenant, the caller's role in it, and a transaction scoped to it (RLS)."""

    tenant_id: uuid.UUID
    slug: str
    name: str
    role: Role
    principal: Principal
    db: AsyncSession
    _after_commit: list[AfterCommit] = field(default_factory=list)

    def after_commit(self, hook: AfterCommit) -> None:
        """Run `hook` once the transaction has committed (e.g. enqueue a task that reads the new row)."""
        self._after_commit.append(hook)

    def is_at_least(self, minimum: Role) -> bool:
        return role_allows(self.role, minimum)


async def tenant_context(
    request: Request,
    principal: CurrentPrincipal,
    x_tenant: Annotated[
        str | None, Header(description="Tenant slug (instead of a `{slug}.` subdomain)")
    ] = None,
) -> AsyncIterator[TenantContext]:
    slug = requested_tenant_slug(x_tenant, request.headers.get("host"), get_settings().tenant_base_domain)
    async with get_sessionmaker()() as session:
        async with session.begin():
            parameters = {"slug": slug, "sub": principal.sub}
            row = (await session.execute(RESOLVE_MEMBERSHIP_AND_SET_TENANT, parameters)).first()
            if row is None:
                # Same answer for an unknown tenant and a foreign one: tenant slugs are not enumerable.
                raise Forbidden(f"not a member of tenant {slug!r}")
            await get_mfa_policy().check(principal, row.role)
            context = TenantContext(
                tenant_id=row.tenant_id,
                slug=row.tenant_slug,
                name=row.tenant_name,
                role=row.role,
                principal=principal,
                db=session,
            )
            yield context
        for hook in context._after_commit:
            try:
                await hook()
            except Exception:  # the transaction is committed: report the side effect, keep the response
                logger.exception("after-commit hook %r failed for tenant %s", hook, context.tenant_id)


def require_role(minimum: Role) -> Callable[[TenantContext], Awaitable[TenantContext]]:
    # async: a plain `def` dependency would cost a worker-thread hop on every request.
    async def check(
        context: Annotated[TenantContext, Depends(tenant_context, scope="function")],
    ) -> TenantContext:
        if not context.is_at_least(minimum):
            raise Forbidden(f"requires the {minimum} role in tenant {context.slug!r}")
        return context

    return check


MemberContext = Annotated[TenantContext, Depends(require_role("member"))]
AdminContext = Annotated[TenantContext, Depends(require_role("admin"))]
OwnerContext = Annotated[TenantContext, Depends(require_role("owner"))]
