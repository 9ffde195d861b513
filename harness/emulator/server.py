"""One emulator process: bind the port, restore state, serve until SIGTERM/SIGINT, take a final snapshot."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from werkzeug.serving import LISTEN_QUEUE, BaseWSGIServer, make_server, select_address_family

from harness.emulator.app import Middleware, build_wsgi_app, create_moto_app
from harness.emulator.config import PREWARM_SERVICES, EmulatorConfig
from harness.emulator.fidelity import build_checks
from harness.emulator.runtime import EmulatorRuntime
from harness.errors import PortInUseError, ServiceStartError

log = logging.getLogger(__name__)

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
LISTEN_BACKLOG = LISTEN_QUEUE


def configure_moto(config: EmulatorConfig) -> None:
    """Process-wide moto settings: every request lands in `config.account_id`, whatever its credentials."""
    os.environ["MOTO_ACCOUNT_ID"] = config.account_id
    os.environ.setdefault("AWS_DEFAULT_REGION", config.region)
    # A request that names no region (unsigned operations such as Cognito's GlobalSignOut, sent to an endpoint
    # URL without a region in its host) lands in the emulator's region, as on a regional AWS endpoint; moto
    # would otherwise send it to us-east-1 and answer NotAuthorized for a token of a me-south-1 pool.
    from moto.core.responses import BaseResponse

    BaseResponse.default_region = config.region
    if not config.access_log:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)


class EmulatorServer:
    """The AWS emulator: moto's every service on one port, with persistence and `/_harness/` endpoints.

    `checks` are extra middlewares placed in front of moto's handlers (see `harness.emulator.app`); by default
    the AWS-faithful checks of `config.fidelity` (`harness.emulator.fidelity`).
    """

    def __init__(self, config: EmulatorConfig, checks: Sequence[Middleware] | None = None) -> None:
        self.config = config
        self.checks = None if checks is None else tuple(checks)
        self.runtime = EmulatorRuntime(config)
        self._moto_app: Any = None
        self._server: BaseWSGIServer | None = None

    def bind(self) -> None:
        """Build the app and bind the port. Raises `PortInUseError` / `ServiceStartError`."""
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        self._moto_app = create_moto_app()
        host, port = self.config.host, self.config.port
        # bound here rather than by werkzeug, which prints its own message and calls sys.exit(1) on failure
        try:
            listening = socket.socket(select_address_family(host, port), socket.SOCK_STREAM)
        except OSError as exc:
            raise ServiceStartError(f"AWS emulator: cannot create a socket for {host}:{port}: {exc}") from exc
        try:
            # like every HTTP server: a restart may bind while the old connections are in TIME_WAIT
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind((host, port))
            listening.listen(LISTEN_BACKLOG)
        except OSError as exc:
            listening.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"AWS emulator: port {port} on {host} is already in use, so the emulator cannot listen there",
                    hint="another AWS emulator (or LocalStack) may be running: check `harness status`, stop it, "
                    "or choose another port with --port (aws.port in topology.toml)",
                ) from exc
            raise ServiceStartError(
                f"AWS emulator: cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="check --host/--port (ports below 1024 need privileges)",
            ) from exc
        bound_port = int(listening.getsockname()[1])  # differs from `port` with --port 0
        checks = self.checks
        if checks is None:
            checks = tuple(build_checks(self.config, endpoint=f"http://{host}:{bound_port}"))
        app = build_wsgi_app(self.runtime, self._moto_app, checks)
        # moto's handler keeps S3 metadata headers that contain "_" (werkzeug would drop them)
        self._server = make_server(
            host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=listening.fileno()
        )
        listening.close()  # werkzeug works on its own duplicate of the descriptor

    @property
    def port(self) -> int:
        """The bound port (useful with --port 0)."""
        assert self._server is not None, "bind() first"
        return int(self._server.port)

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT, then snapshot and return the exit code. Call from the main thread."""
        configure_moto(self.config)
        # Stop signals are blocked in every thread and collected synchronously below: no handler can run in
        # the middle of a restore or a snapshot, and a signal that arrives early simply waits its turn.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        if self._server is None:
            self.bind()
        assert self._server is not None
        self.runtime.restore()
        self.runtime.start_background()
        serving = threading.Thread(target=self._serve, name="emulator-http", daemon=True)
        serving.start()
        log.info(
            "AWS emulator listening on http://%s:%d (account %s, region %s, state %s), ready %s after "
            "process start",
            self.config.host,
            self.port,
            self.config.account_id,
            self.config.region,
            self.config.state_file or "in memory only",
            _time_since_process_start(),
        )
        if self.config.prewarm:
            threading.Thread(target=self._prewarm, name="emulator-prewarm", daemon=True).start()
        received = signal.sigwait(STOP_SIGNALS)
        log.info("AWS emulator: %s received, shutting down", signal.Signals(received).name)
        self._server.shutdown()
        result = self.runtime.close()
        if result is not None:
            log.info("AWS emulator: final snapshot, %d bytes in %.0f ms", result.bytes, result.ms)
        self._server.server_close()
        return 0

    def _serve(self) -> None:
        assert self._server is not None
        try:
            self._server.serve_forever(poll_interval=0.2)
        except Exception:
            log.exception("AWS emulator: the HTTP server failed")
            os.kill(os.getpid(), signal.SIGTERM)  # wake run() so the state is still saved

    def _prewarm(self) -> None:
        dispatcher = self._moto_app
        for service in PREWARM_SERVICES:
            if service in dispatcher.app_instances:
                continue
            try:
                # building an app creates moto backends: hold the gate so no snapshot sees one half made
                with self.runtime.gate.shared():
                    flask_app = dispatcher.create_app(service)
            except Exception:  # a failed prewarm only means a slower first request
                log.debug("AWS emulator: prewarming %s failed", service, exc_info=True)
                continue
            with dispatcher.lock:
                dispatcher.app_instances.setdefault(service, flask_app)


def _time_since_process_start() -> str:
    """From /proc (clock-tick precision); psutil's create_time is off by up to a second in containers."""
    try:
        fields = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        seconds = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return "(unknown)"
    return f"{seconds * 1000:.0f} ms"
