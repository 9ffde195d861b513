"""Every malformed scenario is refused at load time with `file:line: dotted.field: what is wrong`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenarios import LOCAL_SPEC, LoadedScenario, TargetSpec, load_scenario
from harness.scenarios.targets import Capability, DeployedOutputs

NAMESPACES = ["ai:quota:", "ai:limit:", "ai:catalog:", "rl:", "celery:"]
DEPLOYED_MINIMAL = DeployedOutputs(Path("outputs.json"), "https://api.example", "pool", "client").spec()
DEPLOYED_WITH_EMAIL = TargetSpec(
    "deployed",
    frozenset({Capability.EMAIL, Capability.OBJECTS}),
    DeployedOutputs(Path("o.json"), "https://api", "p", "c", ses_events_queue_url="q", bucket="b")
    .spec()
    .missing,
)

HEADER = """\
name: a scenario
targets: [local, deployed]
tenants:
  acme: {users: {owner: {role: owner}, member: {role: member}}}
users:
  newbie: {}
steps:
"""


def load(tmp_path: Path, text: str, target: TargetSpec = LOCAL_SPEC, name: str = "s.yaml") -> LoadedScenario:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_scenario(path, target=target, namespaces=NAMESPACES)


def refused(tmp_path: Path, text: str, target: TargetSpec = LOCAL_SPEC) -> str:
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, text, target)
    return str(info.value)


def steps(body: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(body), "  ")


def assert_problem(message: str, line: int, field: str, text: str) -> None:
    """`message` has a line `<file>:<line>: <field>: ...<text>...`."""
    pattern = rf"s\.yaml:{line}: {re.escape(field)}: .*{re.escape(text)}"
    assert re.search(pattern, message), f"no `{line}: {field}: ...{text}` in:\n{message}"


def test_a_valid_scenario_loads_with_lines(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        steps("""\
        - as: acme.owner
          request: POST /api/v1/catalog
          json: {sku: CAP, name: Cap, price_cents: 100, currency: USD}
          expect: {status: 201}
          save: {item_id: json.id}
        - only: [local]
          expect_rows: {tenant: acme, sql: "SELECT 1 AS one", first: {one: 1}}
        - as: acme.member
          request: GET /api/v1/catalog/${item_id}
        """),
        DEPLOYED_MINIMAL,
    )
    assert [(s.kind, s.line, s.runs) for s in loaded.steps] == [
        ("request", 8, True),
        ("expect_rows", 13, False),
        ("request", 15, True),
    ]
    assert loaded.applicable


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    message = refused(tmp_path, "name: x\nsteps:\n  - request: {json: [1, 2}\n")
    assert re.search(r"s\.yaml:3:\d+: not valid YAML", message), message


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, "name: x\ntargets: [local]\nname: y\nsteps: []\n")
    assert "s.yaml:3: name: duplicate key (first given on line 1)" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "s.yaml:1: expected a mapping" in refused(tmp_path, "- just\n- a list\n")


def test_missing_and_unknown_top_level_keys(tmp_path: Path) -> None:
    message = refused(tmp_path, "nme: x\ntargets: [local]\nsteps: [{request: GET /x}]\n")
    assert_problem(message, 1, "name", "required key is missing")
    assert_problem(message, 1, "nme", "unknown key (did you mean 'name'?)")


def test_targets_must_be_listed(tmp_path: Path) -> None:
    message = refused(tmp_path, "name: x\ntargets: []\nsteps: [{request: GET /x}]\n")
    assert_problem(message, 2, "targets", "list the targets this scenario is valid on (local, deployed)")
    message = refused(tmp_path, "name: x\nsteps: [{request: GET /x}]\n")
    assert "targets: required key is missing" in message


def test_unknown_target(tmp_path: Path) -> None:
    message = refused(tmp_path, "name: x\ntargets: [local, staging]\nsteps: [{request: GET /x}]\n")
    assert_problem(message, 2, "targets[1]", "expected 'local' or 'deployed' (got \"staging\")")


def test_steps_must_not_be_empty(tmp_path: Path) -> None:
    assert_problem(refused(tmp_path, "name: x\ntargets: [local]\nsteps: []\n"), 3, "steps", "at least 1 item")


def test_unknown_step_kind(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- expect_emial: {to: acme.owner}\n"))
    assert_problem(message, 8, "steps[0]", "unknown step kind: a step needs one of request, fetch")
    assert "'expect_emial' -> 'expect_email'?" in message


def test_two_kinds_in_one_step(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- request: GET /x\n  expect_email: {to: acme.owner}\n"))
    assert_problem(message, 8, "steps[0]", "one step has one kind; got request and expect_email")


def test_status_must_be_a_status_code(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        steps("""\
        - request: GET /a
        - request: GET /b
        - request: GET /c
          expect:
            status: ok
        """),
    )
    assert_problem(message, 12, "steps[2].expect.status", "expected an HTTP status code (an integer 100-599)")
    assert '(got "ok")' in message


def test_unknown_key_in_a_step_suggests_the_right_one(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- request: GET /x\n  expct: {status: 200}\n"))
    assert_problem(message, 9, "steps[0].expct", "unknown key (did you mean 'expect'?)")


def test_request_line_and_method(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- request: FETCH /x\n"))
    assert_problem(message, 8, "steps[0].request", "expected 'METHOD /path'")
    message = refused(tmp_path, steps("- request: GET api/v1/x\n"))
    assert_problem(message, 8, "steps[0]", "the path must start with '/'")


def test_within_is_refused_on_unsafe_methods(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- request: POST /api/v1/orders\n  within: 5s\n"))
    assert_problem(message, 8, "steps[0]", "POST is not safe to repeat")


def test_bad_duration(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- expect_email: {to: acme.owner, within: soon}\n"))
    assert_problem(message, 8, "steps[0].expect_email.within", "expected a duration like 10s, 500ms or 2m")


def test_bad_matcher_key_and_regex(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        steps("""\
        - request: GET /x
          expect:
            json:
              id: {gtt: 0}
              name: {matches: "([a-"}
              other: {}
        """),
    )
    assert_problem(message, 11, "steps[0].expect.json.id.gtt", "unknown key (did you mean 'gt'?)")
    assert_problem(message, 12, "steps[0].expect.json.name.matches", "not a valid regular expression")
    assert_problem(message, 13, "steps[0].expect.json.other", "an empty matcher matches nothing")


def test_bad_json_path(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- request: GET /x\n  expect: {json: {'items[0': 1}}\n"))
    assert_problem(message, 9, "steps[0].expect.json", "bad path 'items[0'")


def test_sql_must_be_a_query(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- expect_rows: {tenant: acme, sql: DELETE FROM orders}\n"))
    assert_problem(message, 8, "steps[0].expect_rows.sql", "must be a SELECT")


def test_probe_shape_rules(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- expect_redis: {key: 'rl:a', match: 'rl:*'}\n"))
    assert_problem(message, 8, "steps[0].expect_redis", "give exactly one of `key` (one key) or `match`")
    message = refused(tmp_path, steps("- expect_object: {tenant: acme}\n"))
    assert_problem(message, 8, "steps[0].expect_object", "give exactly one of `key`")


def test_tenant_users_need_a_role_and_others_have_none(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        """\
        name: x
        targets: [local]
        tenants:
          acme: {users: {bob: {}}}
        users:
          eve: {role: admin}
        steps: [{request: GET /x}]
        """,
    )
    assert_problem(message, 4, "tenants.acme.users.bob", "a tenant's user needs a role")
    assert_problem(message, 6, "users.eve.role", "a user outside tenants has no membership")


def test_undeclared_actor_and_tenant(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        steps("""\
        - as: acme.nobody
          request: GET /x
        - as: acme.owner
          request: GET /x
          tenant: globex
        - expect_task: {name: emails.invite, tenant: initech}
        - expect_email: {to: acme.ghost}
        """),
    )
    assert_problem(message, 8, "steps[0].as", "no actor 'acme.nobody'")
    assert "declared: acme.member, acme.owner, newbie" in message
    assert_problem(message, 12, "steps[1].tenant", "no tenant 'globex' is declared (tenants: acme)")
    assert_problem(message, 13, "steps[2].expect_task.tenant", "no tenant 'initech'")
    assert_problem(message, 14, "steps[3].expect_email.to", "no actor 'acme.ghost'")


def test_undefined_variables(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        steps("""\
        - request: GET /api/v1/orders/${order_id}
        - request: POST /api/v1/orders
          save: {order_id: json.id}
        - request: GET /api/v1/orders/${order_idd}
        - request: GET /api/v1/x/${tenants.globex.id}
        - request: GET /api/v1/x/${users.acme.ghost.email}
        - request: GET /api/v1/x/${run.nope}
        """),
    )
    assert_problem(message, 8, "steps[0]", "${order_id}: 'order_id' is not defined here")
    assert_problem(
        message, 11, "steps[2]", "${order_idd}: 'order_idd' is not defined here (did you mean 'order_id'?)"
    )
    assert_problem(message, 12, "steps[3]", "no tenant 'globex' is declared")
    assert_problem(message, 13, "steps[4]", "tenant 'acme' declares no user 'ghost'")
    assert_problem(message, 14, "steps[5]", "run has id, utc_month and started_at")


def test_a_cycle_between_vars_is_named_at_each_variable(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        """\
        name: a scenario
        targets: [local]
        vars:
          base: "${run.id}"
          first: "a-${second}"
          second: "b-${first}"
          later: "c-${base}"
        steps:
          - request: GET /health
        """,
    )
    assert_problem(message, 5, "vars.first", "${second}: a `vars:` value may use only the built-ins")
    assert_problem(message, 5, "vars.first", "first → second → first is a cycle")
    assert_problem(message, 6, "vars.second", "second → first → second is a cycle")
    assert_problem(message, 7, "vars.later", "not another variable of `vars:`; build 'later' from 'base'")
    assert "is not defined here" not in message


def test_a_set_step_renders_in_order_and_names_its_cycles(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        steps("""\
        - set:
            a: "1"
            b: "${a}-2"
            c: "${d}"
            d: "${c}"
            e: "${e}"
            f: "${g}"
            g: "3"
        - request: GET /api/v1/x/${b}/${g}
        """),
    )
    assert_problem(message, 11, "steps[0].set.c", "c → d → c is a cycle")
    assert_problem(message, 13, "steps[0].set.e", "e → e is a cycle")
    assert_problem(message, 14, "steps[0].set.f", "'g' is set below 'f'")
    assert "set.b" not in message and "steps[1]" not in message


def test_a_variable_saved_on_one_target_only(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        steps("""\
        - only: [local]
          expect_email: {to: newbie, extract: {token: 'token: (\\S+)'}}
        - as: newbie
          request: POST /api/v1/invites/accept
          json: {token: "${token}"}
        """),
    )
    assert_problem(message, 10, "steps[1]", "'token' is not defined here")
    assert "(on target deployed)" in message


def test_save_paths_and_names(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        steps("""\
        - request: GET /x
          save: {x: jsn.id, run: json.id, Bad: json.id}
        """),
    )
    assert_problem(message, 9, "steps[0].save.Bad", "is not a valid name")


def test_save_root_must_fit_the_step(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- request: GET /x\n  save: {x: jsn.id}\n"))
    assert_problem(message, 9, "steps[0].save.x", "a request step can save status, headers, json, body")


def test_only_must_be_a_listed_target(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        "name: x\ntargets: [local]\nsteps:\n  - request: GET /x\n    only: [deployed]\n",
    )
    assert_problem(message, 5, "steps[0].only", "'deployed' is not one of this scenario's targets (local)")


def test_redis_keys_outside_the_namespaces(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- expect_redis: {key: 'sessions:${tenants.acme.id}'}\n"))
    assert_problem(
        message, 8, "steps[0].expect_redis.key", "'sessions:' is outside the declared Redis namespaces"
    )


@pytest.mark.parametrize(
    ("step", "field", "reason"),
    [
        (
            "- expect_rows: {tenant: acme, sql: SELECT 1}",
            "steps[0].expect_rows",
            "the deployed database is private",
        ),
        ("- expect_task: {name: x, tenant: acme}", "steps[0].expect_task", "ElastiCache refuses"),
        ("- expect_redis: {key: 'rl:x'}", "steps[0].expect_redis", "give RedisUrl"),
        ("- expect_email: {to: newbie}", "steps[0].expect_email", "needs SesEventsQueueUrl"),
        ("- expect_object: {tenant: acme, prefix: ''}", "steps[0].expect_object", "MediaBucketName"),
        (
            "- request: GET /x\n  as: acme.owner\n  tenant_via: subdomain",
            "steps[0].tenant_via",
            "TenantBaseDomain",
        ),
    ],
)
def test_steps_a_deployed_target_cannot_run(tmp_path: Path, step: str, field: str, reason: str) -> None:
    message = refused(tmp_path, steps(step + "\n"), DEPLOYED_MINIMAL)
    assert_problem(message, 10 if "tenant_via" in field else 8, field, "target deployed cannot run this: ")
    assert reason in message


def test_email_bodies_are_local_only(tmp_path: Path) -> None:
    text = steps("- expect_email: {to: newbie, subject_contains: Hi, body_contains: token}\n")
    message = refused(tmp_path, text, DEPLOYED_WITH_EMAIL)
    assert_problem(
        message, 8, "steps[0].expect_email.body_contains", "SES events carry recipients and subject"
    )
    load(tmp_path, text.replace("- expect_email", "- only: [local]\n    expect_email"), DEPLOYED_WITH_EMAIL)


def test_deployed_mail_is_observed_for_actors_only(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- expect_email: {to: someone@example.com}\n"), DEPLOYED_WITH_EMAIL)
    assert_problem(message, 8, "steps[0].expect_email.to", "mail is observed only for actors")


def test_a_scenario_not_for_the_target_loads_as_not_applicable(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        "name: x\ntargets: [local]\nsteps:\n  - expect_rows: {tenant: t, sql: SELECT 1}\n"
        "tenants: {t: {users: {o: {role: owner}}}}\n",
        DEPLOYED_MINIMAL,
    )
    assert not loaded.applicable


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        steps("""\
        - as: acme.nobody
          request: GET /x/${nothing}
        - expect_redis: {key: 'x:1'}
        """),
    )
    assert "invalid scenario (3 problem(s))" in message
    assert message.endswith("hint: the keys, step kinds and matchers are documented in docs/scenarios.md")


def test_shipped_scenarios_load_on_both_targets() -> None:
    root = Path(__file__).resolve().parents[2] / "scenarios"
    files = sorted(root.glob("*.yaml"))
    assert len(files) >= 10
    full_deployed = DeployedOutputs(
        Path("o.json"), "https://api", "p", "c", ses_events_queue_url="q", bucket="b"
    ).spec()
    for path in files:
        assert load_scenario(path, target=LOCAL_SPEC, namespaces=NAMESPACES).applicable
        assert load_scenario(path, target=full_deployed, namespaces=NAMESPACES).applicable, path


def test_a_real_key_one_level_off_names_where_it_goes(tmp_path: Path) -> None:
    message = refused(tmp_path, steps("- {request: GET /health, status: 200}\n"))
    assert_problem(message, 8, "steps[0].status", "unknown key here; it is a key of expect.status")
    assert "did you mean 'status'" not in message
