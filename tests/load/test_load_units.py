"""The load command's pure parts: option parsing, guard rails, sampling, the report and its verdict."""

from __future__ import annotations

import os

# Locust patches the standard library for gevent when imported; never in the test process (threads would turn
# into greenlets for every test after this one). The load process itself patches (harness/loadproc.py).
os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.scenarios.load.collector import RATE_LIMITED, SETUP, Collector, Counts
from harness.scenarios.load.options import (
    LoadOptions,
    check_limits,
    parse_duration,
    parse_think,
    parse_weights,
)
from harness.scenarios.load.report import build_report, render_text, verdict


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("90", 90), ("2m", 120), ("1m30s", 90), ("1h", 3600), ("0.5s", 0.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-3s", "1x"])
def test_a_duration_that_is_not_one_is_refused_with_the_shape_expected(text: str) -> None:
    with pytest.raises(HarnessError, match="expected a duration such as 30s"):
        parse_duration(text)


def test_think_time_is_seconds_or_a_range() -> None:
    assert parse_think("0") == (0.0, 0.0)
    assert parse_think("1.5") == (1.5, 1.5)
    assert parse_think("0.5-2") == (0.5, 2.0)
    for bad in ("2-1", "a", "-1"):
        with pytest.raises(HarnessError, match="--think"):
            parse_think(bad)


def test_weights_name_files_by_stem_and_refuse_unknown_names() -> None:
    files = [Path("scenarios/orders.yaml"), Path("scenarios/donations.yaml")]
    assert parse_weights(("orders=3",), files) == {"donations": 1, "orders": 3}
    with pytest.raises(HarnessError, match="no scenario file named 'order'") as info:
        parse_weights(("order=3",), files)
    assert "donations, orders" in str(info.value.hint)
    with pytest.raises(HarnessError, match="expected NAME=N"):
        parse_weights(("orders",), files)
    with pytest.raises(HarnessError, match="weight 0"):
        parse_weights(("orders=0", "donations=0"), files)


def _options(**changes: Any) -> LoadOptions:
    base = {"files": ["scenarios/orders.yaml"], "users": 10, "spawn_rate": 5.0, "duration_s": 60.0}
    return LoadOptions(**(base | changes))


def test_caps_are_there_unless_raised_on_purpose() -> None:
    check_limits(_options())
    with pytest.raises(HarnessError, match="above the cap of 200") as info:
        check_limits(_options(users=201))
    assert "--max-users" in str(info.value.hint)
    check_limits(_options(users=201), max_users=500)
    with pytest.raises(HarnessError, match="above the cap"):
        check_limits(_options(duration_s=3600))
    with pytest.raises(HarnessError, match="stops by itself"):
        check_limits(_options(duration_s=0))
    with pytest.raises(HarnessError, match="--sample"):
        check_limits(_options(sample=1.5))


def test_options_travel_to_workers_as_json_unchanged() -> None:
    options = _options(think=(0.5, 1.5), weights={"orders": 2}, workers=2)
    assert LoadOptions.from_json(options.to_json()) == options


def _planned(kind: str, save: dict[str, str] | None = None) -> Any:
    return SimpleNamespace(kind=kind, step=SimpleNamespace(save=save or {}), index=0, label=kind)


def test_user_steps_always_run_probes_on_a_sample_and_probes_that_save_always() -> None:
    collector = Collector(sample=0.25, seed=7)
    assert all(collector.sampled(_planned("request")) for _ in range(100))
    kept = sum(collector.sampled(_planned("expect_email")) for _ in range(1000))
    assert 180 < kept < 320, kept
    assert all(collector.sampled(_planned("expect_email", {"token": "links.0"})) for _ in range(50))
    counts = collector.take()
    assert counts["probes_sampled"] == kept + 50
    assert counts["probes_skipped"] == 1000 - kept
    assert collector.take()["probes_sampled"] == 0  # taken: the next report starts from zero


def test_counts_from_workers_add_up() -> None:
    total = Counts()
    total.add(
        {"emails_expected": 2, "emails_delivered": 2, "email_delays_ms": [10.0, 20.0], "failures": ["a"]}
    )
    total.add({"emails_expected": 1, "emails_delivered": 0, "email_delays_ms": [], "failures": ["b"]})
    assert (total.emails_expected, total.emails_delivered) == (3, 2)
    assert total.email_delays_ms == [10.0, 20.0] and total.failures == ["a", "b"]


def _stats(samples: list[tuple[str, str, float, bool]]) -> Any:
    from locust.stats import RequestStats

    stats = RequestStats()
    for method, name, ms, failed in samples:
        stats.log_request(method, name, ms, 0)
        if failed:
            stats.log_error(method, name, "failed")
    return stats


def _report(stats: Any, **changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "duration_s": 10.0, "users": 2, "workers": 0, "findings": [], "audits_run": ["row-tenant"],
        "audits_skipped": {}, "health": {"samples": 5, "unhealthy": 0, "statuses": {"200": 5}}, "target": "local",
    }  # fmt: skip
    return build_report(stats, Counts(emails_expected=1, emails_delivered=1), **(arguments | changes))


def test_the_report_has_every_field_per_step_and_in_total_with_setup_and_429s_apart() -> None:
    stats = _stats(
        [("request", "orders#2 buy", 100, False)] * 9
        + [("request", "orders#2 buy", 900, True)]
        + [("request", "orders#10 refuse", 50, False)] * 10
        + [(SETUP, "orders setup", 3000, False), (RATE_LIMITED, "orders#2 buy", 5, False)]
    )
    report = _report(stats)
    for name in ("requests", "failures", "p50_ms", "p95_ms", "p99_ms", "rps", "emails_expected",
                 "emails_delivered", "audit_findings", "steps"):  # fmt: skip
        assert name in report
    assert (report["requests"], report["failures"]) == (20, 1)  # setup and 429s are not steps
    assert report["rps"] == 2.0
    assert [s["name"] for s in report["steps"]] == ["orders#2 buy", "orders#10 refuse"]  # in step order
    buy = report["steps"][0]
    assert (buy["requests"], buy["failures"], buy["rate_limited"], buy["p50_ms"]) == (10, 1, 1, 100)
    assert buy["p99_ms"] == 900
    assert report["setup"][0]["name"] == "orders setup"
    assert verdict(report, None, None).passed
    text = "\n".join(render_text(report, verdict(report, None, None)))
    assert "orders#10 refuse" in text and text.endswith("PASSED")


def test_the_verdict_fails_on_failure_rate_p95_and_any_audit_finding() -> None:
    report = _report(_stats([("request", "a#1 x", 100, False)] * 9 + [("request", "a#1 x", 2000, True)]))
    assert verdict(report, 0.2, None).passed
    failed = verdict(report, 0.05, 1000)
    assert not failed.passed
    assert any("failure rate 10.00%" in r for r in failed.reasons)
    assert any("p95 2000 ms" in r for r in failed.reasons)
    finding = {"audit": "object-prefix", "offending": "'exports/x'", "detail": "outside"}
    leaky = _report(_stats([("request", "a#1 x", 100, False)]), findings=[finding])
    outcome = verdict(leaky, None, None)
    assert not outcome.passed and "isolation did not hold" in outcome.reasons[0]
    assert "AUDIT object-prefix" in "\n".join(render_text(leaky, outcome))
    assert not verdict(_report(_stats([])), None, None).passed  # nothing ran is not a pass
