"""The report of a load run: per step (scenario file and step) and in total, from Locust's own stats."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.scenarios.load.collector import CLEANUP, RATE_LIMITED, SETUP, Counts

_NOT_STEPS = {SETUP, CLEANUP, RATE_LIMITED}


def _step_order(entry: Any) -> tuple[str, int, str]:
    """`orders#2 ...` before `orders#10 ...`: by file, then step number."""
    stem, _, rest = entry.name.partition("#")
    number = rest.split(" ", 1)[0]
    return (stem, int(number) if number.isdigit() else 0, entry.name)


def _entry_fields(entry: Any, duration_s: float) -> dict[str, Any]:
    requests = int(entry.num_requests)
    pct = entry.get_response_time_percentile
    return {
        "requests": requests,
        "failures": int(entry.num_failures),
        "p50_ms": float(pct(0.5)) if requests else None,
        "p95_ms": float(pct(0.95)) if requests else None,
        "p99_ms": float(pct(0.99)) if requests else None,
        "rps": round(requests / duration_s, 2) if duration_s > 0 else 0.0,
    }


def build_report(
    stats: Any,
    counts: Counts,
    *,
    duration_s: float,
    users: int,
    workers: int,
    findings: list[dict[str, Any]],
    audits_run: list[str],
    audits_skipped: dict[str, str],
    health: dict[str, Any],
    target: str,
) -> dict[str, Any]:
    """`stats`: the runner's `RequestStats` (aggregated from every worker by Locust's master)."""
    from locust.stats import StatsEntry

    entries = list(stats.entries.values())
    limited = {e.name: int(e.num_requests) for e in entries if e.method == RATE_LIMITED}
    steps = []
    total = StatsEntry(stats, "steps", "", use_response_times_cache=False)
    for entry in sorted(entries, key=_step_order):
        if entry.method in _NOT_STEPS:
            continue
        total.extend(entry)
        steps.append({"name": entry.name, "kind": entry.method, **_entry_fields(entry, duration_s),
                      "rate_limited": limited.get(entry.name, 0)})  # fmt: skip
    setup = [
        {"name": e.name, "kind": e.method, **_entry_fields(e, duration_s)}
        for e in entries
        if e.method in (SETUP, CLEANUP)
    ]
    delays = counts.email_delays_ms
    report: dict[str, Any] = {
        "target": target,
        "users": users,
        "workers": workers,
        "duration_s": round(duration_s, 2),
        **_entry_fields(total, duration_s),
        "rate_limited": counts.rate_limited,
        "iterations": counts.iterations,
        "iterations_failed": counts.iterations_failed,
        "emails_expected": counts.emails_expected,
        "emails_delivered": counts.emails_delivered,
        "email_delay_p50_ms": round(statistics.median(delays), 1) if delays else None,
        "email_delay_max_ms": round(max(delays), 1) if delays else None,
        "probes_sampled": counts.probes_sampled,
        "probes_skipped": counts.probes_skipped,
        "audit_findings": findings,
        "audits_run": audits_run,
        "audits_skipped": audits_skipped,
        "health": health,
        "first_failures": counts.failures[:10],
        "steps": steps,
        "setup": setup,
    }
    return report


@dataclass
class Verdict:
    passed: bool
    reasons: list[str]


def verdict(report: dict[str, Any], max_failure_rate: float | None, max_p95_ms: float | None) -> Verdict:
    reasons: list[str] = []
    requests, failures = report["requests"], report["failures"]
    rate = failures / requests if requests else 0.0
    if max_failure_rate is not None and rate > max_failure_rate:
        reasons.append(f"failure rate {rate:.2%} is above --max-failure-rate {max_failure_rate:.2%}")
    if max_p95_ms is not None and report["p95_ms"] is not None and report["p95_ms"] > max_p95_ms:
        reasons.append(f"p95 {report['p95_ms']:.0f} ms is above --max-p95-ms {max_p95_ms:.0f}")
    if report["audit_findings"]:
        reasons.append(f"{len(report['audit_findings'])} audit finding(s): isolation did not hold under load")
    if requests == 0:
        reasons.append("no step ran: check the scenario files and the target")
    return Verdict(not reasons, reasons)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def render_text(report: dict[str, Any], outcome: Verdict) -> Iterable[str]:
    yield (
        f"load on {report['target']}: {report['users']} users, {report['workers'] or 'no'} worker process(es), "
        f"{report['duration_s']:.0f} s, {report['iterations']} scenario run(s) "
        f"({report['iterations_failed']} failed)"
    )
    width = max([len(s["name"]) for s in report["steps"]] + [10])
    width = min(width, 90)
    yield f"  {'step':<{width}} {'reqs':>6} {'fail':>5} {'429':>4} {'p50':>6} {'p95':>6} {'p99':>6} {'rps':>7}"
    for s in report["steps"]:
        yield (
            f"  {s['name'][:width]:<{width}} {s['requests']:>6} {s['failures']:>5} {s['rate_limited']:>4} "
            f"{_ms(s['p50_ms']):>6} {_ms(s['p95_ms']):>6} {_ms(s['p99_ms']):>6} {s['rps']:>7.1f}"
        )
    yield (
        f"  {'all steps':<{width}} {report['requests']:>6} {report['failures']:>5} {report['rate_limited']:>4} "
        f"{_ms(report['p50_ms']):>6} {_ms(report['p95_ms']):>6} {_ms(report['p99_ms']):>6} {report['rps']:>7.1f}"
    )
    delay = report["email_delay_p50_ms"]
    yield (
        f"  emails: {report['emails_delivered']}/{report['emails_expected']} delivered"
        + (
            f" (delay p50 {delay:.0f} ms, max {report['email_delay_max_ms']:.0f} ms)"
            if delay is not None
            else ""
        )
        + f"; probes sampled {report['probes_sampled']}, skipped {report['probes_skipped']}"
    )
    health = report["health"]
    yield (
        f"  health: {health.get('samples', 0)} sample(s), {health.get('unhealthy', 0)} unhealthy"
        + (f" ({health['statuses']})" if health.get("unhealthy") else "")
    )
    yield f"  audits: {', '.join(report['audits_run']) or 'none'}" + (
        f"; skipped: {', '.join(f'{k} ({v})' for k, v in report['audits_skipped'].items())}"
        if report["audits_skipped"]
        else ""
    )
    for finding in report["audit_findings"]:
        yield f"  AUDIT {finding['audit']}: {finding['offending']} — {finding['detail']}"
    for failure in report["first_failures"]:
        yield f"  failed run: {failure}"
    yield ("PASSED" if outcome.passed else "FAILED: " + "; ".join(outcome.reasons))
