"""Live reload of an app process: `python -m harness.devloop.reload --name NAME --watch DIR [--exclude DIR]
-- COMMAND ...` runs COMMAND and runs it again whenever a Python file under a watched dir changes.

The watching is `watchfiles` (Rust `notify`: inotify on Linux, FSEvents on macOS; no polling loop of ours).
The same supervisor runs the backend (uvicorn) and the worker (Celery), so both behave alike:

- each (re)start writes `--- harness: starting NAME …` to the log, the line readiness checks count from
  (the worker is ready again once it logs `ready.` after it);
- a change stops the process (SIGTERM, then SIGKILL for the whole tree after `STOP_TIMEOUT` seconds) and
  starts it again at once: for a `python -m MODULE …` command the supervisor imports, once, the module and
  every third-party module the watched code imports (`preload`, in the background from the first change
  on), and each restart after that is a fork of it, so a reload pays only for the app's own modules
  (`--no-preload`: a new process each time);
- a process that exits by itself (a file that fails to import, a syntax error) leaves its traceback and
  `--- harness: NAME exited (code N) …` in the log; `harness status` shows the component failing (see
  `failure_in_log`), and the next save starts it again;
- SIGTERM/SIGINT to the supervisor stops the process and the supervisor.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.state import StateDir

RELOAD_ENV = "HARNESS_RELOAD"
RELOAD_FILE = "reload.json"  # in the state dir: what the last `up` chose
START_MARKER = "--- harness: starting"
EXIT_MARKER = "exited (code"
HARNESS_LINE = "--- harness: "
STOP_TIMEOUT = 5.0


def requested_reload(cli_value: bool | None, state: StateDir) -> bool:
    """Live reload of the app processes: the flag, else HARNESS_RELOAD (0/1), else off when CI is set, else
    what this state dir's last `up` chose, else on."""
    if cli_value is not None:
        return cli_value
    raw = os.environ.get(RELOAD_ENV, "").strip().lower()
    if raw:
        if raw in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw in ("1", "true", "yes", "on")
        raise HarnessError(
            f"{RELOAD_ENV}={raw!r} is neither 0 nor 1",
            hint=f"{RELOAD_ENV}=0 turns live reload off (like `harness up --no-reload`), {RELOAD_ENV}=1 on",
        )
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    saved = state.read_json(RELOAD_FILE).get("reload") if state.exists else None
    return saved is not False  # on unless the last `up` turned it off


def say(message: str) -> None:
    sys.stdout.write(f"{HARNESS_LINE}{message}\n")
    sys.stdout.flush()


def failure_in_log(log_text: str) -> str | None:
    """When the last harness line of a reloading process's log says it exited: what to show in `status`."""
    lines = [line for line in log_text.splitlines() if line.startswith(HARNESS_LINE)]
    if lines and EXIT_MARKER in lines[-1]:
        return lines[-1][len(HARNESS_LINE) :]
    return None


class Child:
    """The app process: forked from the supervisor once it preloaded the app's dependencies (`python -m
    MODULE …` commands: a restart then imports only the app's own code), else a plain subprocess."""

    def __init__(self, command: Sequence[str], forked: bool) -> None:
        self.code: int | None = None
        self.popen: subprocess.Popen[bytes] | None = None
        if forked:
            self.pid = _fork_module(command[2], [command[2], *command[3:]])
        else:
            self.popen = subprocess.Popen(list(command), stdin=subprocess.DEVNULL)
            self.pid = self.popen.pid

    def poll(self) -> int | None:
        if self.popen is not None:
            return self.popen.poll()
        if self.code is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.code = -1
                return self.code
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def stop(self) -> None:
        import psutil

        if self.poll() is not None:
            return
        try:
            tree = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            while self.poll() is None:
                time.sleep(0.02)
        for leftover in tree:
            try:
                leftover.kill()
            except psutil.NoSuchProcess:
                pass


def _fork_module(module: str, argv: list[str]) -> int:
    """`python -m module argv…` in a forked child of this (preloaded) process."""
    import runpy
    import traceback

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        sys.argv = argv
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def preload(command: Sequence[str], watch: Sequence[Path]) -> list[str]:
    """Import here, once, the server module and every third-party module the watched code imports (never the
    app's own modules), so each restart forks with them loaded. Returns what was imported."""
    import ast
    import importlib

    local = {root.name for root in watch} | {p.stem for root in watch for p in root.iterdir()}
    wanted: dict[str, set[str]] = {command[2]: set()}  # module -> names imported from it
    for root in watch:
        for path in root.rglob("*.py"):
            try:
                tree = ast.parse(path.read_bytes())
            except (SyntaxError, ValueError, OSError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        wanted.setdefault(alias.name, set())
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    wanted.setdefault(node.module, set()).update(alias.name for alias in node.names)
    loaded = []
    for name, attributes in sorted(wanted.items()):
        if name.split(".")[0] in local:
            continue
        try:
            module = importlib.import_module(name)
            for attribute in attributes:  # lazy packages (celery) import on attribute access
                getattr(module, attribute, None)
            loaded.append(name)
        except Exception:  # an optional dependency, a module that needs the app's env: imported by the child
            continue
    return loaded


def _relative(paths: set[str], roots: Sequence[Path]) -> str:
    shown = []
    for path in sorted(paths)[:3]:
        for root in roots:
            try:
                shown.append(str(Path(path).relative_to(root.parent)))
                break
            except ValueError:
                continue
        else:
            shown.append(path)
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    return ", ".join(shown) + more


def supervise(
    name: str, command: Sequence[str], watch: Sequence[Path], exclude: Sequence[Path], preloading: bool = True
) -> int:
    from watchfiles import PythonFilter
    from watchfiles import watch as watch_changes

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    shown = ", ".join(str(p) for p in watch)

    forkable = (
        preloading and len(command) > 2 and command[1] == "-m" and Path(command[0]).name.startswith("python")
    )
    preloaded = threading.Event()

    def run_preload() -> None:
        t0 = time.monotonic()
        loaded = preload(command, watch)
        say(
            f"reload: preloaded {len(loaded)} modules of the app's dependencies in {time.monotonic() - t0:.1f}s"
        )
        preloaded.set()

    def start(reason: str) -> Child:
        say(f"starting {name} ({reason}; reload on: watching {shown})")
        # forked only once the preload is done: never while another thread may hold the import lock
        return Child(command, forkable and preloaded.is_set())

    child = start(
        "first start"
    )  # a plain process: starting the stack never waits for (or competes with) a preload
    preloading_started = False
    reported = False
    watch_filter = PythonFilter(ignore_paths=[str(p) for p in exclude])
    for changes in watch_changes(
        *watch, watch_filter=watch_filter, stop_event=stop, yield_on_timeout=True, rust_timeout=300, step=50
    ):
        if changes:
            changed = {path for _change, path in changes}
            say(f"reload: {_relative(changed, watch)} changed; restarting {name}")
            child.stop()
            if forkable and not preloading_started:  # the first edit: from the next one on, restarts fork
                preloading_started = True
                threading.Thread(target=run_preload, name="preload", daemon=True).start()
            child = start(f"changed: {_relative(changed, watch)}")
            reported = False
            continue
        code = child.poll()
        if code is not None and not reported:
            say(
                f"{name} {EXIT_MARKER} {code}) — fix the error above; the next save of a watched file starts it again"
            )
            reported = True
    child.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.devloop.reload", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--watch", action="append", required=True, type=Path, help="a dir to watch (repeatable)"
    )
    parser.add_argument("--exclude", action="append", default=[], type=Path, help="a dir not to watch")
    parser.add_argument(
        "--no-preload", action="store_true", help="run the command as a new process each time"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after --")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    started = time.monotonic()
    try:
        return supervise(
            args.name,
            command,
            [p.resolve() for p in args.watch],
            [p.resolve() for p in args.exclude],
            preloading=not args.no_preload,
        )
    finally:
        say(f"reload supervisor of {args.name} stopped after {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
