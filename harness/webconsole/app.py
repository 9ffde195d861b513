"""The console's ASGI app: server-rendered pages (Jinja2), their JSON twins under `/api/`, live mail (SSE).

Security, for a page that shows attacker-controlled mail on a developer's machine:

- bound to 127.0.0.1, and a request whose `Host` is not this console's (DNS rebinding) is refused;
- every page has a strict Content-Security-Policy (scripts only from `/static/`); a mail's HTML is rendered
  in an `<iframe sandbox="" srcdoc=...>` (no script, no form, no navigation of the page) that carries its
  own `default-src 'none'; img-src data:` policy, so no request leaves the page;
- actions that change state are POSTs carrying the stack's token (`<state>/run/console-token`, embedded in
  the page) and are refused cross-origin (`Origin` and `Sec-Fetch-Site`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from harness.errors import HarnessError
from harness.state import StateDir
from harness.topology import load_topology
from harness.webconsole import views
from harness.webconsole.component import HEALTH_PATH, console_token

HERE = Path(__file__).parent
log = logging.getLogger("harness.console")
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
MAIL_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'"
MAIL_POLL_SECONDS = 0.5
T = TypeVar("T")

NAV = (
    ("/", "Overview"),
    ("/mail", "Mail"),
    ("/objects", "Objects"),
    ("/data", "Data"),
    ("/redis", "Redis"),
    ("/identity", "Identity"),
    ("/tasks", "Tasks"),
    ("/scenarios", "Scenarios"),
)


def sandboxed_mail(html: str) -> str:
    """A mail's HTML as the iframe's document, its own strict policy first (a later meta cannot relax it)."""
    return f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{MAIL_CSP}">' + html


def create_app(topology_path: str, state_dir: str, env: str = "local", port: int | None = None) -> FastAPI:
    """The console for the stack of `state_dir` (read through a `LocalRunner`, like the CLI)."""
    from harness.runner import LocalRunner

    topology = load_topology(topology_path, env=env)
    state = StateDir(Path(state_dir))
    token = console_token(state)
    allowed_hosts = {f"127.0.0.1:{port}", f"localhost:{port}"} if port else set()
    origins = {f"http://{host}" for host in allowed_hosts}

    app = FastAPI(title="harness console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["tojson_pretty"] = lambda v: json.dumps(
        v, indent=2, default=str, ensure_ascii=False
    )

    def runner() -> Any:
        return LocalRunner(topology, state)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        host = request.headers.get("host", "")
        if allowed_hosts and host not in allowed_hosts:
            return JSONResponse({"error": f"host {host!r} is not this console"}, status_code=421)
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(HarnessError)
    async def harness_error(request: Request, exc: HarnessError) -> Response:
        status = getattr(exc, "status", 503)  # 503: the stack (not the request) is the problem
        body = {"error": exc.message, "hint": exc.hint}
        if request.url.path.startswith("/api/"):
            return JSONResponse(body, status_code=status)
        return templates.TemplateResponse(
            request, "error.html", page(request, "", error=body), status_code=status
        )

    @app.exception_handler(Exception)
    async def console_bug(request: Request, exc: Exception) -> Response:
        """Anything else is the console's own fault: a page that says so (and the log has the traceback),
        never a bare 500 text."""
        log.exception("console: %s %s failed", request.method, request.url.path)
        body = {
            "title": "The console failed on this page",
            "error": f"{type(exc).__name__}: {exc}",
            "hint": "a console bug: the traceback is in `harness logs console`; reload to try again",
        }
        if request.url.path.startswith("/api/"):
            return JSONResponse(body, status_code=500)
        return templates.TemplateResponse(
            request, "error.html", page(request, "", error=body), status_code=500
        )

    def page(request: Request, active: str, **context: Any) -> dict[str, Any]:
        return {"nav": NAV, "active": active, "token": token, "project": topology.project.name, **context}

    async def call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(func, *args, **kwargs)

    async def check_action(request: Request) -> None:
        """A state-changing request: same origin, and the stack's token (form field or header)."""
        given: str | None = None
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            given = form.get("token", [""])[0]
        origin = request.headers.get("origin")
        site = request.headers.get("sec-fetch-site")
        if (origin is not None and origin not in origins) or (site not in (None, "same-origin", "none")):
            raise ActionRefused("cross-origin request refused", status=403)
        supplied = given or request.headers.get("x-console-token") or ""
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            raise ActionRefused("missing or wrong console token", status=403)

    # -- health and JSON API --------------------------------------------------------------------------
    @app.get(HEALTH_PATH)
    async def health() -> dict[str, Any]:
        return {"ok": True, "state_dir": str(state.root)}

    @app.get("/api/overview")
    async def api_overview() -> Any:
        return await call(views.overview, runner())

    @app.get("/api/tenants")
    async def api_tenants() -> Any:
        return await call(views.tenants, runner())

    @app.get("/api/mail")
    async def api_mail(to: str | None = None, tenant: str | None = None) -> Any:
        return await call(views.mail, runner(), to, tenant)

    @app.get("/api/mail/stream")
    async def api_mail_stream(request: Request, to: str | None = None, tenant: str | None = None) -> Any:
        from sse_starlette.sse import EventSourceResponse

        r = runner()
        seen = {m["id"] for m in await call(views.mail, r, to, tenant)}

        async def events() -> AsyncIterator[dict[str, str]]:
            yield {"event": "ready", "data": json.dumps({"known": len(seen)})}
            while not await request.is_disconnected():
                await asyncio.sleep(MAIL_POLL_SECONDS)
                try:
                    current = await call(views.mail, r, to, tenant)
                except HarnessError as exc:
                    yield {"event": "problem", "data": json.dumps({"error": exc.message})}
                    continue
                for message in reversed(current):  # oldest new one first
                    if message["id"] not in seen:
                        seen.add(message["id"])
                        yield {"event": "mail", "data": json.dumps(message)}

        return EventSourceResponse(events(), ping=15)

    @app.get("/api/mail/{message_id}")
    async def api_mail_message(message_id: str) -> Any:
        return await call(views.mail_message, runner(), message_id)

    @app.get("/api/objects")
    async def api_objects(tenant: str) -> Any:
        return await call(views.objects, runner(), tenant)

    @app.get("/api/data")
    async def api_tables() -> Any:
        return await call(views.tables, runner())

    @app.get("/api/data/{table}")
    async def api_rows(
        table: str, tenant: str, page: int = Query(1, ge=1, le=100_000), id: str | None = None
    ) -> Any:
        result = await call(views.rows, runner(), table, tenant, page, id)
        headers = {"X-More": "1"} if result["more"] else {}
        return JSONResponse(result["rows"], headers=headers)

    @app.get("/api/find/{row_id}")
    async def api_find(row_id: str) -> Any:
        return await call(views.find_row, runner(), row_id)

    @app.get("/api/redis")
    async def api_redis(prefix: str | None = None) -> Any:
        return await call(views.redis_keys, runner(), prefix)

    @app.get("/api/identity/users")
    async def api_users() -> Any:
        return await call(views.identity_users, runner())

    @app.get("/api/tasks")
    async def api_tasks() -> Any:
        return await call(views.tasks, runner())

    @app.get("/api/scenarios")
    async def api_scenarios() -> Any:
        return await call(views.scenario_reports, runner())

    # -- actions --------------------------------------------------------------------------------------
    @app.post("/api/mail/clear")
    async def clear_mail(request: Request) -> Any:
        await check_action(request)
        cleared = await call(views.clear_mail, runner())
        if "application/json" in request.headers.get("accept", ""):
            return {"cleared": cleared}
        return RedirectResponse("/mail", status_code=303)

    @app.post("/api/tenants/{slug}/reset")
    async def reset_tenant(request: Request, slug: str) -> Any:
        from harness.devloop.tenants import reset_tenant as reset

        await check_action(request)
        views.tenant_id(runner(), slug)
        report = await call(reset, runner(), slug)
        views._cache.clear()
        if "application/json" in request.headers.get("accept", ""):
            return report.as_json()
        return RedirectResponse(f"/data?{urlencode({'tenant': slug})}", status_code=303)

    # -- pages ----------------------------------------------------------------------------------------
    def render(request: Request, name: str, active: str, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, page(request, active, **context))

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        return render(request, "overview.html", "/", data=await call(views.overview, runner()))

    @app.get("/mail", response_class=HTMLResponse)
    async def mail_page(request: Request, to: str | None = None, tenant: str | None = None) -> Response:
        r = runner()
        messages = await call(views.mail, r, to, tenant)
        return render(
            request, "mail.html", "/mail", messages=messages, to=to or "", tenant=tenant or "",
            tenants=await call(views.tenants, r),
        )  # fmt: skip

    @app.get("/mail/{message_id}", response_class=HTMLResponse)
    async def message_page(request: Request, message_id: str) -> Response:
        r = runner()
        message = await call(views.mail_message, r, message_id)
        rows = []
        for row_id in message["ids"]:
            rows.extend(await call(views.find_row, r, row_id))
        srcdoc = sandboxed_mail(message["html"]) if message.get("html") is not None else None
        return render(request, "message.html", "/mail", message=message, srcdoc=srcdoc, rows=rows)

    @app.get("/objects", response_class=HTMLResponse)
    async def objects_page(request: Request, tenant: str | None = None) -> Response:
        r = runner()
        tenant_list = await call(views.tenants, r)
        tenant = tenant or (tenant_list[0]["slug"] if tenant_list else None)
        found = await call(views.objects, r, tenant) if tenant else []
        return render(request, "objects.html", "/objects", objects=found, tenant=tenant, tenants=tenant_list)

    @app.get("/data", response_class=HTMLResponse)
    @app.get("/data/{table}", response_class=HTMLResponse)
    async def data_page(
        request: Request,
        table: str | None = None,
        tenant: str | None = None,
        page: int = Query(1, ge=1, le=100_000),
        id: str | None = None,
    ) -> Response:
        r = runner()
        tenant_list = await call(views.tenants, r)
        table_list = await call(views.tables, r)
        tenant = tenant or (tenant_list[0]["slug"] if tenant_list else None)
        result = await call(views.rows, r, table, tenant, page, id) if table and tenant else None
        return render(
            request, "data.html", "/data", tables=table_list, table=table, tenant=tenant,
            tenants=tenant_list, result=result, row_id=id,
        )  # fmt: skip

    @app.get("/redis", response_class=HTMLResponse)
    async def redis_page(request: Request, prefix: str | None = None) -> Response:
        r = runner()
        keys = await call(views.redis_keys, r, prefix or None)
        return render(
            request, "redis.html", "/redis", keys=keys, prefix=prefix or "",
            namespaces=views.redis_namespaces(r),
        )  # fmt: skip

    @app.get("/identity", response_class=HTMLResponse)
    async def identity_page(request: Request) -> Response:
        return render(request, "identity.html", "/identity", users=await call(views.identity_users, runner()))

    @app.get("/tasks", response_class=HTMLResponse)
    async def tasks_page(request: Request) -> Response:
        return render(request, "tasks.html", "/tasks", tasks=await call(views.tasks, runner()))

    @app.get("/scenarios", response_class=HTMLResponse)
    async def scenarios_page(request: Request) -> Response:
        reports = await call(views.scenario_reports, runner())
        return render(request, "scenarios.html", "/scenarios", reports=reports)

    return app


class ActionRefused(HarnessError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, hint="use the console page itself (it carries the stack's token)")
        self.status = status
