"""`harness env --format nextjs`: a `.env.local` for the Next.js frontend of the architecture.

What may reach a browser is under `NEXT_PUBLIC_*` (Next.js inlines those into the client bundle): the API
URL, the region, the user pool and app client ids, the Cognito endpoint (the emulator locally) and the tenant
base domain (tenants are subdomains: `acme.<base domain>`). The confidential client's secret and the token
issuer stay under server-side names, read only by the Next.js server (route handlers, server actions).
`public=True` leaves the server-side lines out: that output is safe to paste anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.devloop import require_up

LOCAL_TENANT_BASE_DOMAIN = "localhost"  # browsers resolve *.localhost to 127.0.0.1: acme.localhost:3000


@dataclass(frozen=True)
class EnvLine:
    name: str
    value: str
    public: bool
    comment: str


def nextjs_env(runner: Any, *, public: bool = False) -> list[EnvLine]:
    """The frontend's variables, public ones first; with `public`, only those."""
    require_up(runner, ["aws"])
    contract = runner.env("backend")
    base_domain = LOCAL_TENANT_BASE_DOMAIN if runner.topology.env == "local" else runner.topology.ses.domain
    lines = [
        EnvLine("NEXT_PUBLIC_API_URL", contract["API_URL"], True, "the backend"),
        EnvLine("NEXT_PUBLIC_AWS_REGION", contract["AWS_REGION"], True, "Cognito's region"),
        EnvLine("NEXT_PUBLIC_COGNITO_USER_POOL_ID", contract["COGNITO_USER_POOL_ID"], True, "user pool"),
        EnvLine("NEXT_PUBLIC_COGNITO_CLIENT_ID", contract["COGNITO_CLIENT_ID"], True, "app client id"),
        EnvLine(
            "NEXT_PUBLIC_COGNITO_ENDPOINT",
            contract.get("AWS_ENDPOINT_URL", ""),
            True,
            "Cognito's endpoint (the local emulator; empty on AWS)",
        ),
        EnvLine("NEXT_PUBLIC_TENANT_BASE_DOMAIN", base_domain, True, "tenants are <slug>.<this>"),
        EnvLine("COGNITO_ISSUER", contract["COGNITO_ISSUER"], False, "token issuer (server-side checks)"),
        EnvLine(
            "COGNITO_CLIENT_SECRET",
            contract["COGNITO_CLIENT_SECRET"],
            False,
            "confidential client's secret: server-side only, never NEXT_PUBLIC_",
        ),
    ]
    return [line for line in lines if line.public or not public]


def render_dotenv(lines: list[EnvLine], quote: Any) -> str:
    """The `.env.local` text; `quote` is the dotenv quoting of `harness env`."""
    out = [
        "# .env.local for the Next.js frontend: `harness env --format nextjs` (harness/devloop/frontend.py)"
    ]
    for public in (True, False):
        group = [line for line in lines if line.public == public]
        if not group:
            continue
        out.append("# public: inlined into the browser bundle" if public else "# server-side only (secrets)")
        for line in group:
            out += [f"# {line.comment}", f"{line.name}={quote(line.value)}"]
    return "\n".join(out)
