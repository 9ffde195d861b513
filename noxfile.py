"""Developer entry points. Each session is a thin call into the `harness` CLI or pytest.

All sessions share one virtualenv (`.nox/harness`), installed once from `constraints.txt` (`nox -s lock`
writes it) and reinstalled only when `pyproject.toml` or `constraints.txt` changes, so a second `nox -s up`
starts the stack without touching pip.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"

ROOT = Path(__file__).parent
VENV = ROOT / ".nox" / "harness"
BIN = VENV / "bin"
CONSTRAINTS = ROOT / "constraints.txt"


def _harness_venv(session: nox.Session) -> Path:
    """Create/refresh the shared venv; skip pip entirely when pyproject.toml and constraints.txt are unchanged."""
    if not CONSTRAINTS.exists():
        session.error(f"{CONSTRAINTS} is missing: run `nox -s lock` to write it from pyproject.toml")
    inputs = (ROOT / "pyproject.toml").read_bytes() + CONSTRAINTS.read_bytes()
    digest = hashlib.sha256(inputs).hexdigest()[:16]
    marker = VENV / f".installed-{digest}"
    if not marker.exists():
        if not (BIN / "python").exists():
            session.run(sys.executable, "-m", "venv", str(VENV), external=True)
        session.run(str(BIN / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip", external=True)
        session.run(
            str(BIN / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            str(CONSTRAINTS),
            "-e",
            f"{ROOT}[dev]",
            external=True,
        )
        for old in VENV.glob(".installed-*"):
            old.unlink()
        marker.touch()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    os.environ["VIRTUAL_ENV"] = str(VENV)
    return BIN


def _harness(session: nox.Session, *args: str) -> None:
    bin_dir = _harness_venv(session)
    session.run(str(bin_dir / "harness"), *args, *session.posargs, external=True)


@nox.session
def up(session: nox.Session) -> None:
    """Start the whole local stack (Postgres, Valkey, AWS emulator, backend, worker), provisioned."""
    _harness(session, "up")


@nox.session
def down(session: nox.Session) -> None:
    """Stop every process of the local stack (data is kept)."""
    _harness(session, "down")


@nox.session
def reset(session: nox.Session) -> None:
    """Stop the stack and wipe its state dir (all local data)."""
    _harness(session, "reset", "--yes")


@nox.session
def status(session: nox.Session) -> None:
    """Show each component's state, pid, endpoint and health (`-- --json` for JSON)."""
    _harness(session, "status")


@nox.session
def env(session: nox.Session) -> None:
    """Print the env contract of the running stack (`-- --format json|dotenv|shell`)."""
    _harness(session, "env")


@nox.session(default=False)
def restart(session: nox.Session) -> None:
    """Restart app processes (`-- backend`, `-- worker postgres`; none named: every app process)."""
    _harness(session, "restart")


@nox.session
def logs(session: nox.Session) -> None:
    """Show a component's log (`-- postgres`, `-- aws -f`)."""
    _harness(session, "logs")


@nox.session
def seed(session: nox.Session) -> None:
    """Load seed/ again into the running stack (idempotent)."""
    _harness(session, "seed")


@nox.session
def psql(session: nox.Session) -> None:
    """psql on the app's database (`-- --tenant acme -c 'select * from orders'`, `-- --role admin`)."""
    _harness(session, "psql")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (starts its own stack on free ports; pytest args after `--`)."""
    bin_dir = _harness_venv(session)
    session.run(str(bin_dir / "python"), "-m", "pytest", *session.posargs, external=True)


@nox.session(default=False)
def load(session: nox.Session) -> None:
    """The scenario files as load on Locust: nox -s load -- scenarios/orders.yaml --users 20 --duration 30s."""
    _harness(session, "scenarios", "load")


@nox.session(default=False)
def scenarios(session: nox.Session) -> None:
    """Run scenarios/ against the local stack, starting it if down (pytest args after `--`, e.g. -k orders)."""
    bin_dir = _harness_venv(session)
    session.run(str(bin_dir / "harness"), "up", external=True)
    session.run(
        str(bin_dir / "python"), "-m", "pytest", "scenarios", "--stack", "attach", "--target", "local",
        *session.posargs, external=True,
    )  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy harness."""
    bin_dir = _harness_venv(session)
    session.run(str(bin_dir / "ruff"), "check", ".", external=True)
    session.run(str(bin_dir / "ruff"), "format", "--check", ".", external=True)
    session.run(str(bin_dir / "mypy"), "harness", external=True)


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Write constraints.txt from a fresh resolution of pyproject.toml (no venv is touched)."""
    session.run(sys.executable, "-m", "harness.constraints", *session.posargs, external=True)


@nox.session(name="deploy-staging", default=False)
def deploy_staging(session: nox.Session) -> None:
    """Deploy staging to AWS: plan, confirm, apply, migrate, roll, gate (`-- --plan`, `-- --render`)."""
    _harness(session, "deploy", "--env", "staging")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Print a benchmark: `-- startup` (default), `-- app`, or another module of bench/, then its args."""
    bin_dir = _harness_venv(session)
    args = list(session.posargs)
    name = args.pop(0) if args and not args[0].startswith("-") else "startup"
    session.run(str(bin_dir / "python"), "-m", f"bench.{name}", *args, external=True)
