"""Snapshots of the whole running stack: save one, load it back, list, delete, export to a file, import one.

A snapshot is one consistent copy of

- Postgres: the app database cloned inside the cluster (`CREATE DATABASE <db>_snap_<name> TEMPLATE <db>`,
  a file-level copy: milliseconds for the seeded stack); loading clones it back the same way;
- Redis: every key of every database with its TTL (`DUMP` / `RESTORE`), taken while writes are paused;
- the AWS emulator's state (`GET /_harness/state`: objects, Cognito users and signing keys, secrets,
  parameters, captured mail), loaded back with `PUT /_harness/state`;
- the state dir's documents the data belongs with: `secrets.json` (role and user passwords, generated
  secrets), `outputs.json` (the env contract's values) and `app.json` (which app inputs migrated the schema).

Consistency: while Postgres is copied no connection to the app database exists (new ones are refused for
those milliseconds, open ones are closed; the app's pools reconnect) and Redis writes are paused
(`CLIENT PAUSE … WRITE`), so the rows and the keys are of one moment; the emulator's copy follows at once
(taken with its request gate held). Everything but the database copy lives in `<state>/snapshots/<name>/`.

Every step talks to the stores over their protocols (SQL, RESP, HTTP), so snapshots work the same on the
embedded and the Docker tier. `load` refuses a snapshot of another topology (the digest of what shapes the
data: names, roles, namespaces, pool, secrets) or of another harness version. `export` writes one file
(a tar of the above plus a `pg_dump` of the database copy); `import` reads one back.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.devloop import require_up
from harness.errors import HarnessError

Progress = Callable[[str, str], None]
SNAPSHOT_FORMAT = 1
SNAPSHOTS_DIR = "snapshots"
MANIFEST = "manifest.json"
REDIS_FILE = "redis.bin"
AWS_FILE = "aws.state"
STATE_DOCUMENTS = ("secrets.json", "outputs.json", "app.json")
# The running servers were started with these: a snapshot never replaces them.
INFRASTRUCTURE_SECRETS = ("postgres-superuser", "redis-default")
DIGEST_SECTIONS = ("project", "postgres", "redis", "s3", "ses", "cognito", "secrets", "parameters")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
REDIS_PAUSE_MS = 30_000  # upper bound; unpaused as soon as the copy is taken


def _no_progress(component: str, message: str) -> None:
    return None


def harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("saas-harness")
    except PackageNotFoundError:
        return "unknown"


def topology_digests(topology: Any) -> dict[str, str]:
    """One digest per section that shapes the stack's data (ports and [deploy] do not)."""
    dumped = topology.model_dump(mode="json", by_alias=True)
    digests = {}
    for section in DIGEST_SECTIONS:
        value = dumped.get(section)
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "port"}
        digests[section] = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
    return digests


def topology_digest(digests: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:16]


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise HarnessError(
            f"snapshot name {name!r} is not valid",
            hint="use 1-40 characters: lowercase letters, digits, '-' and '_' (e.g. `before-migration`)",
        )
    return name


@dataclass
class Snapshot:
    """A row of `harness snapshot list` (and what `load` checks)."""

    name: str
    created_at: str
    harness_version: str
    topology_digest: str
    topology_sections: dict[str, str]
    database: str
    backend: str
    format: int = SNAPSHOT_FORMAT
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    fits: bool = True  # for `list`: loadable on this stack
    problem: str = ""

    def manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("fits")
        data.pop("problem")
        return data

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def snapshots_dir(runner: Any) -> Path:
    return Path(runner.state.root) / SNAPSHOTS_DIR


def snapshot_database(runner: Any, name: str) -> str:
    return f"{runner.topology.postgres.database}_snap_{name}"


def _read_manifest(path: Path) -> Snapshot:
    try:
        data = json.loads((path / MANIFEST).read_text())
        known = {k: data[k] for k in Snapshot.__dataclass_fields__ if k in data}
        return Snapshot(**known)
    except (OSError, ValueError, TypeError) as exc:
        raise HarnessError(
            f"snapshot {path.name}: {path / MANIFEST} is unreadable ({exc})",
            hint=f"`harness snapshot delete {path.name}` removes it",
        ) from exc


def mismatch(runner: Any, snap: Snapshot) -> str:
    """Why `snap` cannot be loaded on this stack ('' when it can)."""
    if snap.format != SNAPSHOT_FORMAT:
        return f"it has snapshot format {snap.format}, this harness reads format {SNAPSHOT_FORMAT}"
    if snap.harness_version != harness_version():
        return f"it was taken with harness {snap.harness_version}, this is harness {harness_version()}"
    if snap.database != runner.topology.postgres.database:
        return (
            f"it holds database {snap.database!r}, this topology's is {runner.topology.postgres.database!r}"
        )
    current = topology_digests(runner.topology)
    if snap.topology_digest != topology_digest(current):
        differ = sorted(k for k in current if snap.topology_sections.get(k) != current[k])
        return (
            f"it was taken with another topology (digest {snap.topology_digest}, this one is "
            f"{topology_digest(current)}; differing: {', '.join(differ) or 'unknown'})"
        )
    return ""


def _refuse_mismatch(runner: Any, snap: Snapshot) -> None:
    problem = mismatch(runner, snap)
    if problem:
        raise HarnessError(
            f"snapshot {snap.name} cannot be loaded here: {problem}",
            hint="check out the topology.toml and harness version it was taken with (same commit) and load "
            f"it there, or save a new snapshot with this one (`harness snapshot save {snap.name} --force`)",
        )


def list_snapshots(runner: Any) -> list[Snapshot]:
    root = snapshots_dir(runner)
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.is_dir() and (path / MANIFEST).exists():
            snap = _read_manifest(path)
            snap.name = path.name  # the directory names it (`load NAME`)
            snap.problem = mismatch(runner, snap)
            snap.fits = not snap.problem
            found.append(snap)
    return found


def get_snapshot(runner: Any, name: str) -> Snapshot:
    path = snapshots_dir(runner) / check_name(name)
    if not (path / MANIFEST).exists():
        known = ", ".join(s.name for s in list_snapshots(runner)) or "none"
        raise HarnessError(
            f"no snapshot {name!r} in {snapshots_dir(runner)} (snapshots: {known})",
            hint=f"`harness snapshot save {name}` takes one; `harness snapshot list` shows them",
        )
    snap = _read_manifest(path)
    snap.name = path.name
    return snap


# --- Postgres ---------------------------------------------------------------------------------------------


def _pg_admin(runner: Any) -> Any:
    import psycopg

    pg = runner.admin_connections()[0]
    return psycopg.connect(
        pg.url_for(pg.superuser, pg.password, "postgres"), autocommit=True, connect_timeout=10
    )


@contextmanager
def _no_connections(db: Any, database: str) -> Iterator[None]:
    """No session on `database` while the block runs: new ones refused, open ones closed."""
    from psycopg import sql

    ident = sql.Identifier(database)
    db.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
    try:
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        yield
    finally:
        db.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident))


def _database_exists(db: Any, name: str) -> bool:
    return db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _drop_database(db: Any, name: str) -> None:
    from psycopg import sql

    db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _copy_database(db: Any, source: str, target: str, owner: str) -> None:
    """`target` as a copy of `source` (no session may be on `source`), block by block through the WAL:
    faster here than FILE_COPY, whose checkpoint costs more than copying a small database."""
    from psycopg import sql

    db.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {} STRATEGY WAL_LOG").format(
            sql.Identifier(target), sql.Identifier(source), sql.Identifier(owner)
        )
    )


def _seal(db: Any, name: str) -> None:
    from psycopg import sql

    db.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))


# --- Redis ------------------------------------------------------------------------------------------------


def _redis(runner: Any, db: int = 0) -> Any:
    import redis

    conn = runner.admin_connections()[1]
    return redis.Redis(
        host=conn.host,
        port=conn.port,
        username=conn.username,
        password=conn.password,
        db=db,
        socket_timeout=30,
    )


def _redis_databases(client: Any) -> list[int]:
    keyspace = client.info("keyspace")
    return sorted(int(name[2:]) for name in keyspace if name.startswith("db"))


@contextmanager
def _redis_writes_paused(client: Any) -> Iterator[None]:
    client.execute_command("CLIENT", "PAUSE", REDIS_PAUSE_MS, "WRITE")
    try:
        yield
    finally:
        client.execute_command("CLIENT", "UNPAUSE")


def _dump_redis(runner: Any, control: Any) -> bytes:
    from harness.devloop.snapshot_files import RedisEntry, encode_redis

    entries: list[RedisEntry] = []
    for number in _redis_databases(control):
        client = _redis(runner, number)
        try:
            keys = list(client.scan_iter(count=1000))
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.dump(key)
                pipe.pttl(key)
            replies = pipe.execute()
        finally:
            client.close()
        for index, key in enumerate(keys):
            value, ttl = replies[2 * index], replies[2 * index + 1]
            if value is not None:  # expired in between
                entries.append(RedisEntry(number, key, int(ttl) if int(ttl) > 0 else 0, value))
    return encode_redis(entries)


def _load_redis(runner: Any, data: bytes) -> int:
    from harness.devloop.snapshot_files import decode_redis

    entries = decode_redis(data)
    control = _redis(runner)
    try:
        control.flushall()
    finally:
        control.close()
    by_db: dict[int, list[Any]] = {}
    for entry in entries:
        by_db.setdefault(entry.db, []).append(entry)
    for number, group in by_db.items():
        client = _redis(runner, number)
        try:
            pipe = client.pipeline(transaction=False)
            for entry in group:
                pipe.restore(entry.key, entry.ttl_ms, entry.value, replace=True)
            pipe.execute()
        finally:
            client.close()
    return len(entries)


# --- the AWS emulator -------------------------------------------------------------------------------------


def _aws_url(runner: Any) -> str:
    aws = runner.aws()
    if getattr(aws, "source", "harness") != "harness":
        raise HarnessError(
            "snapshots need the harness's own AWS emulator; this stack attaches to an external AWS endpoint "
            f"({aws.endpoint}), whose state the harness cannot copy",
            hint="run without --aws-endpoint / [aws] endpoint to snapshot the whole stack",
        )
    return str(runner.admin_connections()[2].url)


def _control_headers(runner: Any) -> dict[str, str]:
    """/_harness/state answers only with the stack's control token (harness/emulator/control_guard.py)."""
    from harness.emulator.control_guard import CONTROL_TOKEN_HEADER, CONTROL_TOKEN_SECRET

    return {CONTROL_TOKEN_HEADER: runner.state.secret(CONTROL_TOKEN_SECRET)}


def _emulator_request(
    url: str,
    method: str,
    body: bytes | None = None,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
) -> bytes:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{url}/_harness/state", data=body, method=method, headers=headers or {})
    if body is not None:
        request.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", "")
        except ValueError:
            detail = ""
        raise HarnessError(
            f"the AWS emulator refused {method} /_harness/state (HTTP {exc.code}): {detail}",
            hint="`harness logs aws` shows why; a state from another moto version cannot be loaded",
        ) from exc
    except OSError as exc:
        raise HarnessError(
            f"the AWS emulator at {url} did not answer {method} /_harness/state: {exc}",
            hint="`harness status` shows whether it runs",
        ) from exc


# --- save / load / delete ---------------------------------------------------------------------------------


def save_snapshot(
    runner: Any, name: str, *, force: bool = False, progress: Progress = _no_progress
) -> Snapshot:
    """Take a snapshot of the running stack as `name` (`force`: replace one of that name)."""
    started = time.monotonic()
    check_name(name)
    require_up(runner, ["postgres", "redis", "aws"])
    aws_url = _aws_url(runner)
    target = snapshots_dir(runner) / name
    if (target / MANIFEST).exists() and not force:
        raise HarnessError(
            f"a snapshot {name!r} exists already", hint=f"`harness snapshot save {name} --force` replaces it"
        )
    database = runner.topology.postgres.database
    snap_db = snapshot_database(runner, name)
    partial = target.with_name(f".{name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    partial.chmod(0o700)
    control = _redis(runner)
    try:
        with _pg_admin(runner) as db:
            _drop_database(db, snap_db + "_new")
            with _redis_writes_paused(control):
                with _no_connections(db, database):
                    _copy_database(db, database, snap_db + "_new", runner.topology.postgres.owner_role)
                _seal(db, snap_db + "_new")
                progress("postgres", f"copied {database}")
                redis_data = _dump_redis(runner, control)
            progress("redis", "copied every key")
            aws_data = _emulator_request(aws_url, "GET", headers=_control_headers(runner))
            progress("aws", f"copied the emulator's state ({len(aws_data) // 1024} KiB)")
            (partial / REDIS_FILE).write_bytes(redis_data)
            (partial / AWS_FILE).write_bytes(aws_data)
            for document in STATE_DOCUMENTS:
                source = Path(runner.state.root) / document
                if source.exists():
                    shutil.copy2(source, partial / document)
            digests = topology_digests(runner.topology)
            snap = Snapshot(
                name=name,
                created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                harness_version=harness_version(),
                topology_digest=topology_digest(digests),
                topology_sections=digests,
                database=database,
                backend=runner.backend,
                sizes={"redis": len(redis_data), "aws": len(aws_data)},
            )
            snap.seconds = round(time.monotonic() - started, 3)
            (partial / MANIFEST).write_text(json.dumps(snap.manifest(), indent=2, sort_keys=True) + "\n")
            # commit: the database copy first, then the directory (a manifest never names a missing copy)
            _drop_database(db, snap_db)
            from psycopg import sql

            db.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(snap_db + "_new"), sql.Identifier(snap_db)
                )
            )
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        control.close()
    return snap


@dataclass
class LoadReport:
    name: str
    seconds: float
    redis_keys: int
    provisioned: bool
    restarted: list[str]
    schema_note: str = ""


def load_snapshot(runner: Any, name: str, *, progress: Progress = _no_progress) -> LoadReport:
    """Put the running stack back to snapshot `name` (refused when it was taken with another topology or
    harness version)."""
    started = time.monotonic()
    require_up(runner, ["postgres", "redis", "aws"])
    snap = get_snapshot(runner, name)
    _refuse_mismatch(runner, snap)
    aws_url = _aws_url(runner)
    path = snapshots_dir(runner) / name
    database = runner.topology.postgres.database
    snap_db = snapshot_database(runner, name)
    with _pg_admin(runner) as db:
        if not _database_exists(db, snap_db):
            raise HarnessError(
                f"snapshot {name}: its database copy {snap_db} is not in this stack's Postgres",
                hint=f"`harness snapshot delete {name}` removes the rest; import it again from its export file",
            )
        # The emulator first: it is the one that can still refuse (another moto version), before any data goes.
        _emulator_request(aws_url, "PUT", (path / AWS_FILE).read_bytes(), headers=_control_headers(runner))
        progress("aws", "state loaded")
        keys = _load_redis(runner, (path / REDIS_FILE).read_bytes())
        progress("redis", f"{keys} key(s) loaded")
        _drop_database(db, database)
        _copy_database(db, snap_db, database, runner.topology.postgres.owner_role)
    from harness.provision.postgres import provision_database_grants

    provision_database_grants(runner.topology, runner.admin_connections()[0])
    progress("postgres", f"{database} loaded")
    provisioned, restarted = _restore_state_documents(runner, path, progress)
    note = ""
    app_state = runner.state.read_json("app.json")
    if app_state.get("inputs") and app_state.get("inputs") != runner.inputs_digest():
        note = (
            "the app's inputs changed since this snapshot's schema was migrated: `harness up` (or `harness "
            "migrate`) applies any migration it lacks"
        )
    return LoadReport(name, time.monotonic() - started, keys, provisioned, restarted, note)


def _restore_state_documents(runner: Any, path: Path, progress: Progress) -> tuple[bool, list[str]]:
    """Put back secrets.json, outputs.json, app.json; provision again when the snapshot's secrets or env
    contract differ from this stack's (an imported snapshot), and restart the app when its contract changed."""
    state = runner.state
    current_secrets = state.read_json("secrets.json")
    saved_secrets = (
        json.loads((path / "secrets.json").read_text()) if (path / "secrets.json").exists() else {}
    )
    merged = {
        **saved_secrets,
        **{k: current_secrets[k] for k in INFRASTRUCTURE_SECRETS if k in current_secrets},
    }
    outputs_before = state.read_json("outputs.json")
    saved_outputs = (
        json.loads((path / "outputs.json").read_text()) if (path / "outputs.json").exists() else {}
    )
    if (path / "app.json").exists():
        shutil.copy2(path / "app.json", Path(state.root) / "app.json")
    if merged == current_secrets and saved_outputs.get("values") == outputs_before.get("values"):
        return False, []
    state.write_json("secrets.json", merged, private=True)
    from harness.provision.apply import provision

    progress("provision", "the snapshot's secrets differ from this stack's: applying the topology")
    result = provision(runner.topology, runner.infrastructure(), state)
    runner.aws().snapshot()
    restarted: list[str] = []
    if result.values != outputs_before.get("values"):
        apps = [app for app in runner.apps() if app.managed and app.pid() is not None]
        for app in apps:
            app.stop()
        if apps:
            runner.start_components(apps, progress=progress)
            restarted = [app.name for app in apps]
    return True, restarted


def delete_snapshot(runner: Any, name: str) -> None:
    get_snapshot(runner, name)
    try:
        with _pg_admin(runner) as db:
            _drop_database(db, snapshot_database(runner, name))
    except Exception as exc:  # Postgres down: the files still go; the copy is dropped with the next save
        if "connection" not in str(exc).lower():
            raise
        raise HarnessError(
            f"cannot drop snapshot {name}'s database copy: Postgres does not answer ({exc})",
            hint="`harness up` first, then delete it again",
        ) from exc
    shutil.rmtree(snapshots_dir(runner) / name)
