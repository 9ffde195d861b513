"""`harness snapshot save|load|list|delete NAME`, `export NAME FILE`, `import FILE` (harness/devloop/snapshots.py).

Registered in harness/cli.py with one `main.add_command` line; imports nothing from harness.cli at load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harness.cli_devloop import _progress, handled, say


@click.group()
def snapshot() -> None:
    """Snapshots of the whole stack (Postgres, Redis, the AWS emulator, the state dir's secrets)."""


@snapshot.command("save")
@click.argument("name")
@click.option("--force", is_flag=True, help="replace a snapshot of that name")
@click.pass_obj
@handled
def snapshot_save(obj: Any, name: str, force: bool) -> None:
    """Take a snapshot of the running stack as NAME."""
    from harness.devloop.snapshots import save_snapshot

    snap = save_snapshot(obj.runner(), name, force=force, progress=_progress)
    say(f"snapshot {snap.name} saved in {snap.seconds:.2f}s (`harness snapshot load {snap.name}` goes back)")


@snapshot.command("load")
@click.argument("name")
@click.pass_obj
@handled
def snapshot_load(obj: Any, name: str) -> None:
    """Put the running stack back to snapshot NAME (every current row, key, object and user is replaced)."""
    from harness.devloop.snapshots import load_snapshot

    report = load_snapshot(obj.runner(), name, progress=_progress)
    if report.restarted:
        say(f"restarted {', '.join(report.restarted)} with the snapshot's env contract")
    if report.schema_note:
        say(f"note: {report.schema_note}")
    say(f"snapshot {name} loaded in {report.seconds:.2f}s")


@snapshot.command("list")
@click.option("--json", "as_json", is_flag=True, help="a JSON list on stdout")
@click.pass_obj
@handled
def snapshot_list(obj: Any, as_json: bool) -> None:
    """The snapshots of this state dir, and whether each can be loaded here."""
    from harness.devloop.snapshots import list_snapshots

    snaps = list_snapshots(obj.runner())
    if as_json:
        click.echo(json.dumps([s.as_json() for s in snaps], indent=2))
        return
    if not snaps:
        say("no snapshots (`harness snapshot save NAME` takes one)")
        return
    for s in snaps:
        size = sum(s.sizes.values()) // 1024
        fits = "ok" if s.fits else f"not loadable: {s.problem}"
        click.echo(f"{s.name:<24} {s.created_at}  {size:>6} KiB  {s.backend:<8}  {fits}")


@snapshot.command("delete")
@click.argument("name")
@click.pass_obj
@handled
def snapshot_delete(obj: Any, name: str) -> None:
    """Delete snapshot NAME (its files and its database copy)."""
    from harness.devloop.snapshots import delete_snapshot

    delete_snapshot(obj.runner(), name)
    say(f"snapshot {name} deleted")


@snapshot.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@handled
def snapshot_export(obj: Any, name: str, file: Path) -> None:
    """Write snapshot NAME to FILE, for a teammate to `import` (it holds the stack's dev secrets)."""
    from harness.devloop.snapshot_files import export_snapshot

    written = export_snapshot(obj.runner(), name, file)
    say(f"snapshot {name} exported to {written} ({written.stat().st_size // 1024} KiB, mode 0600)")


@snapshot.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", metavar="NAME", help="import under this name (default: the snapshot's own)")
@click.option("--force", is_flag=True, help="replace a snapshot of that name")
@click.pass_obj
@handled
def snapshot_import(obj: Any, file: Path, name: str | None, force: bool) -> None:
    """Read a snapshot FILE written by `export` (only from someone you trust: it carries a pickle)."""
    from harness.devloop.snapshot_files import import_snapshot

    snap = import_snapshot(obj.runner(), file, name=name, force=force)
    say(f"snapshot {snap.name} imported (`harness snapshot load {snap.name}` loads it)")
