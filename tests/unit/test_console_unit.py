"""The web console without a stack: its place in the topology and the tiers, its token, its guards."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from harness.backends.base import tier_info
from harness.state import StateDir
from harness.topology import load_topology, port_key
from harness.webconsole.app import MAIL_CSP, create_app, sandboxed_mail
from harness.webconsole.component import ConsoleService, console_token

ROOT = Path(__file__).resolve().parents[2]


def test_console_port_is_in_the_topology_and_never_deployed() -> None:
    topology = load_topology(ROOT / "topology.toml")
    assert topology.ports()["console"] == topology.console.port == 8025
    assert port_key("console") == "console.port"
    assert "console" not in topology.services  # harness/deploy deploys [services.*] only


def test_disabled_console_has_no_port_and_no_component(tmp_path: Path) -> None:
    text = (
        (ROOT / "topology.toml").read_text().replace("[console]\nport = 8025", "[console]\nenabled = false")
    )
    (tmp_path / "topology.toml").write_text(text)
    topology = load_topology(tmp_path / "topology.toml")
    assert "console" not in topology.ports()
    tier = tier_info("embedded").load()(topology, StateDir(tmp_path / "state"), tmp_path)
    assert tier.extra_components(topology.ports()) == []


@pytest.mark.parametrize("backend", ["embedded", "docker"])
def test_each_tier_runs_the_console_on_the_host_loopback(tmp_path: Path, backend: str) -> None:
    topology = load_topology(ROOT / "topology.toml")
    tier = tier_info(backend).load()(topology, StateDir(tmp_path), ROOT)
    (console,) = tier.extra_components({**topology.ports(), "console": 18025})
    assert isinstance(console, ConsoleService)
    assert console.endpoint == "http://127.0.0.1:18025"
    assert "--port" in console.argv() and "18025" in console.argv()


def test_token_is_private_and_stable(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    token = console_token(state)
    assert len(token) >= 40 and console_token(state) == token
    mode = stat.S_IMODE((tmp_path / "run" / "console-token").stat().st_mode)
    assert mode == 0o600
    shutil.rmtree(tmp_path / "run")
    assert console_token(state) != token  # a new stack, a new token


def test_mail_html_gets_its_own_policy_first() -> None:
    doc = sandboxed_mail('<meta http-equiv="Content-Security-Policy" content="default-src *"><p>hi')
    assert doc.index(MAIL_CSP) < doc.index("default-src *")
    assert "img-src data:" in MAIL_CSP and "script" not in MAIL_CSP


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    app = create_app(str(ROOT / "topology.toml"), str(tmp_path), port=18025)
    return TestClient(app, base_url="http://127.0.0.1:18025")


def test_health_and_strict_headers(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_foreign_host_is_refused(client: TestClient) -> None:
    assert client.get("/api/health", headers={"host": "attacker.test:18025"}).status_code == 421


def test_actions_need_the_token_and_the_same_origin(client: TestClient, tmp_path: Path) -> None:
    token = console_token(StateDir(tmp_path))
    assert client.post("/api/mail/clear").status_code == 403
    assert client.post("/api/mail/clear", headers={"x-console-token": "nope"}).status_code == 403
    cross = {"x-console-token": token, "origin": "http://attacker.test"}
    assert client.post("/api/mail/clear", headers=cross).status_code == 403
    site = {"x-console-token": token, "sec-fetch-site": "cross-site"}
    assert client.post("/api/mail/clear", headers=site).status_code == 403
    form = client.post(
        "/api/mail/clear",
        content=b"token=wrong",
        headers={"content-type": "application/x-www-form-urlencoded", "origin": "http://127.0.0.1:18025"},
    )
    assert form.status_code == 403


def test_stack_not_up_is_a_clear_503(client: TestClient) -> None:
    response = client.get("/api/mail")
    assert response.status_code == 503
    assert "harness up" in response.json()["hint"]


def test_the_console_never_triggers_provisioning() -> None:
    from harness.connections import AwsConnection, Infrastructure, PostgresConnection, RedisConnection
    from harness.provision.outputs import fingerprint
    from harness.topology import Console

    topology = load_topology(ROOT / "topology.toml")
    infra = Infrastructure(
        PostgresConnection("127.0.0.1", 5432, "postgres", "pw"),
        RedisConnection("127.0.0.1", 6379, "default", "pw"),
        AwsConnection("http://127.0.0.1:4566", "me-south-1"),
    )
    moved = topology.model_copy(update={"console": Console(port=9999)})
    off = topology.model_copy(update={"console": Console(enabled=False)})
    assert fingerprint(topology, infra) == fingerprint(moved, infra) == fingerprint(off, infra)


def test_the_last_scenario_run_is_kept_per_file_masked(tmp_path: Path) -> None:
    import json
    from datetime import UTC, datetime

    from harness.scenarios.last_run import save_last_run
    from harness.scenarios.report import Masker, ScenarioReport, StepRecord

    report = ScenarioReport("orders", "scenarios/orders.yaml", "local", "run1")
    report.steps = [StepRecord(1, "sign in with s3cr3t-value", "scenarios/orders.yaml:9", "passed")]
    report.steps.append(StepRecord(2, "order", "scenarios/orders.yaml:14", "failed"))
    report.failed_step, report.error = report.steps[1], "boom with s3cr3t-value"
    path = save_last_run(tmp_path, report, Masker(["s3cr3t-value"]), {"steps_s": 1.5}, datetime.now(UTC))
    text = path.read_text()
    assert "s3cr3t-value" not in text
    saved = json.loads(text)
    assert saved["passed"] is False and saved["file"] == "scenarios/orders.yaml"
    assert [s["status"] for s in saved["steps"]] == ["passed", "failed"] and saved["steps"][1]["error"]
    assert path.name == "scenarios_orders.yaml.json"


def test_a_user_deleted_while_the_pool_is_read_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity page lists users while tests and the app delete them: one gone between the listing and
    its detail is not an error of the page (it was a 500 with several test workers on one stack)."""
    import boto3
    from botocore.stub import Stubber

    from harness.webconsole import views

    cognito = boto3.client(
        "cognito-idp", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(cognito)
    pool = "eu-west-1_abc"

    def user(name: str, sub: str) -> dict[str, object]:
        return {
            "Username": name,
            "Attributes": [{"Name": "sub", "Value": sub}, {"Name": "email", "Value": name}],
        }

    stub.add_response("list_users", {"Users": [user("gone@x.test", "s-gone"), user("kept@x.test", "s-kept")]})
    stub.add_client_error("admin_list_groups_for_user", "UserNotFoundException", "User does not exist.")
    stub.add_response("admin_list_groups_for_user", {"Groups": [{"GroupName": "member"}]})
    stub.add_response("admin_get_user", {"Username": "kept@x.test", "UserMFASettingList": []})

    class Db:
        def tenants_of(self, subs: list[str]) -> set[str]:
            return {"t-1"} if subs == ["s-kept"] else set()

        def close(self) -> None:
            pass

    class Runner:
        state = StateDir(Path("/nonexistent"))

        def admin_connections(self) -> tuple[None, None, object]:
            class Aws:
                def client(self, name: str) -> object:
                    return cognito

            return None, None, Aws()

        def env(self, name: str) -> dict[str, str]:
            return {"COGNITO_USER_POOL_ID": pool}

    monkeypatch.setattr(views, "_app_db", lambda runner: Db())
    monkeypatch.setattr(views, "tenants", lambda runner: [{"id": "t-1", "slug": "acme"}])
    with stub:
        found = views.identity_users(Runner())
    assert [(u["email"], u["groups"], u["tenants"]) for u in found] == [("kept@x.test", ["member"], ["acme"])]


def test_a_console_bug_is_a_page_that_says_so(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.webconsole import views

    def broken(runner: object) -> list[object]:
        raise RuntimeError("boom in a view")

    monkeypatch.setattr(views, "identity_users", broken)
    client_ = TestClient(client.app, base_url="http://127.0.0.1:18025", raise_server_exceptions=False)
    page = client_.get("/identity")
    assert page.status_code == 500
    assert "<h1>" in page.text and "RuntimeError: boom in a view" in page.text
    assert "harness logs console" in page.text
    api = client_.get("/api/identity/users")
    assert api.status_code == 500 and api.json()["error"] == "RuntimeError: boom in a view"
