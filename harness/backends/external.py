"""An AWS endpoint someone else runs: LocalStack, fakecloud, another moto (`[aws] endpoint`, `--aws-endpoint`).

The harness attaches the stack to it instead of starting its own emulator: it never starts or stops it,
provisions it the same way as its own (provisioning is idempotent, so every `up` re-applies it: the harness
cannot know what the other emulator kept), and says in `status` and in the scenario report that its own
fidelity checks (harness.emulator's) do not run there (`harness.fidelity.unproven_on`, `aws_source_summary`).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar

from harness.backends.base import AwsComponent
from harness.connections import AwsConnection
from harness.errors import ServiceNotReady
from harness.readiness import CallableCheck, Readiness
from harness.state import StateDir
from harness.topology import Topology

ATTACH_TIMEOUT = 15.0


class ExternalAws(AwsComponent):
    """The stack's AWS endpoint when it is an emulator already running at `url`."""

    managed = False
    source: ClassVar[str] = "external"
    start_timeout = ATTACH_TIMEOUT

    def __init__(self, url: str, topology: Topology, state: StateDir) -> None:
        self.url = url.rstrip("/")
        self.topology = topology
        self.state = state

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def log_file(self) -> Path:
        return self.state.log_file(self.name)

    def connection(self) -> AwsConnection:
        return AwsConnection(endpoint_url=self.url, region=self.topology.region)

    def start(self) -> int:
        raise ServiceNotReady(
            f"aws: the external AWS endpoint {self.url} does not answer ({self.health()}); "
            "the harness attaches to it but does not start it",
            hint="start that emulator (LocalStack, moto_server, …) first, or drop `[aws] endpoint` / "
            "`--aws-endpoint` to use the harness's own emulator",
        )

    def stop(self) -> bool:
        return False  # not ours to stop

    def pid(self) -> int | None:
        return None

    def readiness(self) -> Readiness:
        return CallableCheck(f"HTTP answer from {self.url}", self._answers)

    def _answers(self) -> str | None:
        """Any HTTP answer will do: AWS-compatible emulators differ in their health paths."""
        try:
            with urllib.request.urlopen(self.url + "/", timeout=3):
                return None
        except urllib.error.HTTPError:
            return None  # it answered (an API root often says 404 or 403)
        except (OSError, ValueError) as exc:
            return f"GET {self.url}/: {getattr(exc, 'reason', exc)}"

    def log_tail(self) -> str:
        return f"(an external endpoint: {self.url} keeps its own logs)"

    def note(self) -> str:
        from harness.fidelity import aws_source_summary

        return "not started or stopped by the harness; " + aws_source_summary(self.source)

    def describe(self) -> str:
        return (
            f"an external AWS endpoint at {self.url}, not started or stopped by the harness; the harness's own "
            "fidelity checks do not run there"
        )
