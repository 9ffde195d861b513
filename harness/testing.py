"""A running stack for tests and tools: start one on free ports in a temporary state dir, or attach.

`RunningStack` is what the `stack` pytest fixture yields: the env contract per component, admin URLs for
probes, and AWS clients on the stack's endpoint.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from harness.connections import AwsConnection, PostgresConnection, RedisConnection
from harness.runner import LocalRunner, UpReport
from harness.state import StateDir, default_state_dir
from harness.topology import Topology, find_topology_file, load_topology

# Env contract keys whose value is a secret (AWS_SECRET_ACCESS_KEY is the emulator's well-known "test").
SECRET_ENV_NAME = re.compile(r"(?i)(PASSWORD|SECRET(?!_ACCESS_KEY)|TOKEN|PRIVATE|_KEY$)")


def private_temp_dir(prefix: str = "harness-") -> Path:
    """A temp dir other local users can traverse (Postgres runs as an unprivileged user when we are root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass
class RunningStack:
    runner: LocalRunner
    owned: bool  # True when this object started the stack (and so stops and wipes it)
    report: UpReport | None = None
    _env_cache: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def topology(self) -> Topology:
        return self.runner.topology

    @property
    def state(self) -> StateDir:
        return self.runner.state

    def env(self, component: str = "backend") -> dict[str, str]:
        if component not in self._env_cache:
            self._env_cache[component] = self.runner.env(component)
        return dict(self._env_cache[component])

    @property
    def api_url(self) -> str:
        return self.runner.api_url()

    @property
    def postgres(self) -> PostgresConnection:
        return self.runner.admin_connections()[0]

    @property
    def redis(self) -> RedisConnection:
        return self.runner.admin_connections()[1]

    @property
    def aws(self) -> AwsConnection:
        return self.runner.admin_connections()[2]

    @property
    def admin_database_url(self) -> str:
        """Superuser URL of the app's database (for probes; the app itself never gets this)."""
        pg = self.postgres
        return pg.url_for(pg.superuser, pg.password, self.topology.postgres.database)

    @property
    def redis_admin_url(self) -> str:
        return self.redis.url

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def control_headers(self) -> dict[str, str]:
        """The header the emulator's secret-bearing `/_harness/` paths need (harness/emulator/control_guard.py)."""
        from harness.emulator.control_guard import CONTROL_TOKEN_HEADER, CONTROL_TOKEN_SECRET

        return {CONTROL_TOKEN_HEADER: self.state.secret(CONTROL_TOKEN_SECRET)}

    def cognito_signing_key(self, pool_id: str | None = None) -> dict[str, Any]:
        """A user pool's private signing key as a JWK (default: the app's pool), to mint tokens with chosen
        claims; its private parts are registered with the secret guard, so no test output may show them."""
        import httpx

        from harness.secret_guard import remember

        pool = pool_id or self.env()["COGNITO_USER_POOL_ID"]
        response = httpx.get(
            f"{self.aws.endpoint_url}/_harness/cognito/signing-key",
            params={"pool": pool},
            headers=self.control_headers(),
            timeout=10,
        )
        response.raise_for_status()
        jwk: dict[str, Any] = response.json()
        for part in ("d", "p", "q", "dp", "dq", "qi"):
            remember(jwk.get(part), f"the private signing key of pool {pool}")
        return jwk

    def secrets(self) -> dict[str, str]:
        """Every secret value of this stack, by what it is: admin and role passwords, ACL user passwords, and
        the env contract's secret values (the pytest plugin's secret guard fails a test whose output shows one)."""
        from harness.emulator.control_guard import CONTROL_TOKEN_HEADER
        from harness.provision.apply import redis_user_password, role_password

        found = {
            "the emulator's control token": self.control_headers()[CONTROL_TOKEN_HEADER],
            "the Postgres superuser password": self.postgres.password,
            "the Redis admin password": self.redis.password,
        }
        for role in self.topology.postgres.roles:
            found[f"the password of Postgres role {role}"] = role_password(self.state, role)
        for user in self.topology.redis.users:
            found[f"the password of Redis user {user}"] = redis_user_password(self.state, user)
        for component in self.topology.services:
            for key, value in self.env(component).items():
                password = urlsplit(value).password if "://" in value else None
                if password:
                    found[f"the password in {key}"] = unquote(password)
                elif SECRET_ENV_NAME.search(key):
                    found[key] = value
        return {label: value for label, value in found.items() if value}

    def stop(self) -> None:
        if self.owned:
            self.runner.reset()  # down, then its state: the state dir, and on the Docker tier its volumes


def start_stack(
    topology_file: Path | None = None,
    *,
    env: str = "local",
    with_app: bool = True,
    state_root: Path | None = None,
) -> RunningStack:
    """Start a fresh stack on free ports in its own state dir (removed by `RunningStack.stop()`)."""
    path = topology_file or find_topology_file()
    topology = load_topology(path, env=env)
    state = StateDir(state_root or private_temp_dir())
    runner = LocalRunner(topology, state, ports_mode="auto", reload=False)  # tests run without live reload
    stack = RunningStack(runner, owned=True)
    try:
        stack.report = runner.up(with_app=with_app)
    except BaseException:
        stack.stop()
        raise
    return stack


def attach_stack(topology_file: Path | None = None, *, env: str = "local") -> RunningStack:
    """The stack already running from the default state dir (`nox -s up`), left running afterwards."""
    path = topology_file or find_topology_file()
    topology = load_topology(path, env=env)
    state_dir = Path(os.environ["HARNESS_STATE_DIR"]) if "HARNESS_STATE_DIR" in os.environ else None
    runner = LocalRunner(topology, StateDir(state_dir or default_state_dir(path)))
    return RunningStack(runner, owned=False)
