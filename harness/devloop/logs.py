"""`harness logs -f` without a component: every component's log at once, each line prefixed with its
component (coloured on a terminal), like `docker compose logs -f`.

A process writes its log to `<state>/logs/<name>.log` (followed as the file grows, and from the start again
when it is truncated); a container's log is streamed from the engine (the state dir keeps only a copy).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from harness.errors import HarnessError

COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "bright_red", "bright_cyan", "bright_yellow")
POLL_SECONDS = 0.2


def _last_lines(path: Path, lines: int) -> tuple[list[str], int]:
    """The last `lines` lines of `path` and the offset where following goes on."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return [], 0
    kept = text.splitlines()[-lines:] if lines > 0 else []
    return kept, size


def follow_file(path: Path, lines: int, stop: threading.Event) -> Iterator[str]:
    """The last `lines` lines, then each new line as it is written (until `stop`)."""
    first, offset = _last_lines(path, lines)
    yield from first
    pending = b""
    while not stop.is_set():
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size < offset:  # truncated or replaced (a container's copy is rewritten): from the start
            offset, pending = 0, b""
        if size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read(size - offset)
            offset += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", "replace")
        else:
            stop.wait(POLL_SECONDS)


def follow_container(container_id: str, lines: int, stop: threading.Event) -> Iterator[str]:
    import docker

    container = docker.from_env().containers.get(container_id)
    pending = b""
    for chunk in container.logs(stream=True, follow=True, tail=lines):
        if stop.is_set():
            return
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace")


def follow_logs(
    runner: Any,
    names: Sequence[str] = (),
    *,
    lines: int = 10,
    out: TextIO | None = None,
    colour: bool | None = None,
    until: Callable[[], bool] | None = None,
) -> None:
    """Print every (or each named) component's log, prefixed, until interrupted (or `until()` is true)."""
    import click

    out = out or sys.stdout
    colour = out.isatty() if colour is None else colour
    components = runner.components()
    unknown = [n for n in names if n not in components]
    if unknown:
        raise HarnessError(f"no component {', '.join(unknown)}", hint=f"components: {', '.join(components)}")
    chosen = [components[n] for n in names] if names else list(components.values())
    width = max(len(c.name) for c in chosen)
    lines_q: queue.Queue[tuple[int, str]] = queue.Queue()
    stop = threading.Event()

    def pump(index: int, component: Any) -> None:
        container_id = component.container_id() if component.managed else None
        source = (
            follow_container(container_id, lines, stop)
            if container_id
            else follow_file(component.log_file, lines, stop)
        )
        try:
            for line in source:
                lines_q.put((index, line))
        except Exception as exc:  # a container gone, an engine that stopped answering
            lines_q.put((index, f"(harness: stopped following: {exc})"))

    threads = [
        threading.Thread(target=pump, args=(i, c), daemon=True, name=f"logs-{c.name}")
        for i, c in enumerate(chosen)
    ]
    for thread in threads:
        thread.start()
    prefixes = []
    for i, c in enumerate(chosen):
        prefix = f"{c.name:<{width}} | "
        prefixes.append(click.style(prefix, fg=COLOURS[i % len(COLOURS)], bold=True) if colour else prefix)
    try:
        while until is None or not until():
            try:
                index, line = lines_q.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            out.write(prefixes[index] + line + "\n")
            out.flush()
    finally:
        stop.set()
        time.sleep(0)
