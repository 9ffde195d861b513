"""A snapshot as files: the Redis copy's format, and `export` / `import` of a whole snapshot as one file.

The export file is a gzipped tar: the snapshot's directory (manifest, Redis keys, the emulator's state, the
state dir's documents) plus `postgres.dump`, a `pg_dump --format=custom` of its database copy. It holds the
stack's dev secrets and the emulator's state is a pickle (loading it runs code named in it): share exports
only with people you would let run code on your machine, like a branch.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

REDIS_MAGIC = b"HARNESS-REDIS-1\n"
_ENTRY = struct.Struct(">BqII")  # db, ttl in ms (0: none), key length, value length
PG_DUMP_FILE = "postgres.dump"
EXPORT_SUFFIX = ".harness-snapshot.tgz"


@dataclass(frozen=True)
class RedisEntry:
    db: int
    key: bytes
    ttl_ms: int
    value: bytes  # DUMP's serialisation


def encode_redis(entries: list[RedisEntry]) -> bytes:
    out = io.BytesIO()
    out.write(REDIS_MAGIC)
    for e in entries:
        out.write(_ENTRY.pack(e.db, e.ttl_ms, len(e.key), len(e.value)))
        out.write(e.key)
        out.write(e.value)
    return out.getvalue()


def decode_redis(data: bytes) -> list[RedisEntry]:
    if not data.startswith(REDIS_MAGIC):
        raise HarnessError("the snapshot's Redis copy is not in the harness's format (wrong magic bytes)")
    entries, offset = [], len(REDIS_MAGIC)
    while offset < len(data):
        if offset + _ENTRY.size > len(data):
            raise HarnessError("the snapshot's Redis copy is truncated")
        db, ttl, key_len, value_len = _ENTRY.unpack_from(data, offset)
        offset += _ENTRY.size
        key = data[offset : offset + key_len]
        value = data[offset + key_len : offset + key_len + value_len]
        if len(key) != key_len or len(value) != value_len:
            raise HarnessError("the snapshot's Redis copy is truncated")
        offset += key_len + value_len
        entries.append(RedisEntry(db, key, ttl, value))
    return entries


def _pg_tool(name: str) -> str:
    from harness.backends.embedded import postgres_bin_dir

    path = postgres_bin_dir() / name
    if not path.exists():
        raise HarnessError(
            f"no {name} at {path}", hint="reinstall pgserver (`pip install --force-reinstall pgserver`)"
        )
    return str(path)


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    import os

    result = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise HarnessError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def _pg_env(runner: Any) -> dict[str, str]:
    pg = runner.admin_connections()[0]
    return {"PGPASSWORD": pg.password, "PGHOST": pg.host, "PGPORT": str(pg.port), "PGUSER": pg.superuser}


def export_snapshot(runner: Any, name: str, file: Path) -> Path:
    """Write snapshot `name` as one file (mode 0600: it holds the stack's dev secrets)."""
    from psycopg import sql

    from harness.devloop import require_up
    from harness.devloop.snapshots import _pg_admin, get_snapshot, snapshot_database, snapshots_dir

    get_snapshot(runner, name)
    require_up(runner, ["postgres"])
    source = snapshots_dir(runner) / name
    snap_db = snapshot_database(runner, name)
    file = file.resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    dump = file.with_name(f".{file.name}.pgdump")
    env = _pg_env(runner)
    with _pg_admin(runner) as db:
        db.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(snap_db)))
        try:
            _run(
                [_pg_tool("pg_dump"), "--format=custom", "--file", str(dump), snap_db],
                env,
                f"pg_dump of {snap_db}",
            )
        finally:
            db.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(snap_db)))
    tmp = file.with_name(f".{file.name}.tmp")
    try:
        with open(tmp, "wb") as raw:
            tmp.chmod(0o600)
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar:
                for path in sorted(source.iterdir()):
                    tar.add(path, arcname=path.name)
                tar.add(dump, arcname=PG_DUMP_FILE)
        tmp.replace(file)
    finally:
        dump.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return file


def import_snapshot(runner: Any, file: Path, *, name: str | None = None, force: bool = False) -> Any:
    """Read an export file into this stack's snapshots (as its own name, or `name`); refused when it was taken
    with another topology or harness version, like `load`."""
    from psycopg import sql

    from harness.devloop import require_up
    from harness.devloop.snapshots import (
        MANIFEST,
        Snapshot,
        _drop_database,
        _pg_admin,
        _read_manifest,
        _refuse_mismatch,
        _seal,
        check_name,
        snapshot_database,
        snapshots_dir,
    )

    if not file.is_file():
        raise HarnessError(
            f"no snapshot file at {file}", hint="`harness snapshot export NAME FILE` writes one"
        )
    require_up(runner, ["postgres"])
    staging = snapshots_dir(runner) / f".import-{int(time.time() * 1000)}"
    staging.mkdir(parents=True)
    staging.chmod(0o700)
    try:
        try:
            with tarfile.open(file, mode="r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise HarnessError(
                f"{file} is not a snapshot export ({exc})",
                hint="`harness snapshot export NAME FILE` writes one",
            ) from exc
        if not (staging / MANIFEST).exists() or not (staging / PG_DUMP_FILE).exists():
            raise HarnessError(f"{file} is not a snapshot export (no {MANIFEST} or {PG_DUMP_FILE} in it)")
        snap: Snapshot = _read_manifest(staging)
        if name is not None:
            snap.name = check_name(name)
        check_name(snap.name)
        _refuse_mismatch(runner, snap)
        target = snapshots_dir(runner) / snap.name
        if target.exists() and not force:
            raise HarnessError(
                f"a snapshot {snap.name!r} exists already",
                hint=f"`--name OTHER` imports it under another name, `--force` replaces {snap.name}",
            )
        snap_db = snapshot_database(runner, snap.name)
        env = _pg_env(runner)
        with _pg_admin(runner) as db:
            _drop_database(db, snap_db)
            db.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(snap_db), sql.Identifier(runner.topology.postgres.owner_role)
                )
            )
            try:
                _run(
                    [
                        _pg_tool("pg_restore"),
                        "--exit-on-error",
                        "--dbname",
                        snap_db,
                        str(staging / PG_DUMP_FILE),
                    ],
                    env,
                    f"pg_restore into {snap_db}",
                )
            except HarnessError:
                _drop_database(db, snap_db)
                raise
            _seal(db, snap_db)
        (staging / PG_DUMP_FILE).unlink()
        (staging / MANIFEST).write_text(json.dumps(snap.manifest(), indent=2, sort_keys=True) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return snap
    finally:
        shutil.rmtree(staging, ignore_errors=True)
