"""What the HTTP step kinds (request, fetch, upload) share: checking a response against `expect:`."""

from __future__ import annotations

from harness.scenarios.execute import Attempt, StepContext
from harness.scenarios.fields import HttpExpect
from harness.scenarios.http import Exchange
from harness.scenarios.matchers import describe
from harness.scenarios.paths import Missing, parse_path, resolve

HTTP_SAVE_ROOTS = ("status", "headers", "json", "body")


def http_attempt(context: StepContext, expect: HttpExpect, exchange: Exchange) -> Attempt:
    return Attempt(http_problems(context, expect, exchange), exchange.outcome(), exchange)


def http_problems(context: StepContext, expect: HttpExpect, exchange: Exchange) -> list[str]:
    if exchange.error:
        return [f"no response: {exchange.error}"]
    problems: list[str] = []
    status = exchange.status or 0
    if expect.status is None:
        if not 200 <= status < 300:
            problems.append(f"status: expected a 2xx (no expect.status given), got {status}")
    elif status not in expect.status:
        wanted = expect.status[0] if len(expect.status) == 1 else list(expect.status)
        problems.append(f"status: expected {wanted}, got {status}")
    outcome = exchange.outcome()
    for name, expected in expect.headers.items():
        actual = outcome["headers"].get(name, Missing((), f"the response has no {name} header"))
        problems += [f"headers.{name}: {p}" for p in context.check(expected, actual)]
    if expect.json_:
        if outcome["json"] is None and exchange.response_body.strip() not in ("null",):
            problems.append("json: the response body is not JSON")
        else:
            for path, expected in expect.json_.items():
                actual = resolve(outcome["json"], parse_path(path))
                problems += [
                    f"json.{path}: {p}" if path not in ("$", "") else f"json: {p}"
                    for p in context.check(expected, actual)
                ]
    if "body" in expect.model_fields_set:
        problems += [f"body: {p}" for p in context.check(expect.body, exchange.response_body)]
    return problems


def describe_http(expect: HttpExpect) -> str:
    parts = []
    if expect.status is not None:
        parts.append(f"status {'/'.join(map(str, expect.status))}")
    parts += [f"{name} {describe(value)}" for name, value in expect.headers.items()]
    parts += [f"json.{path} {describe(value)}" for path, value in expect.json_.items()]
    return ", ".join(parts) or "any 2xx"
