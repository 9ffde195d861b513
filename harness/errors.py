"""One error hierarchy for the harness: every message says what failed, what was checked and how to fix it."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of every error the harness reports to a user (printed without a traceback)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class TopologyError(HarnessError):
    """`topology.toml` is malformed or inconsistent (the message names the file and the dotted key)."""


class StateError(HarnessError):
    """The state dir is unusable (permissions, another harness owns it, a corrupt file)."""


class PortInUseError(HarnessError):
    """A component's port is already taken by a process the harness did not start."""


class ServiceStartError(HarnessError):
    """A component could not be started (missing binary, exited at once)."""


class ServiceNotReady(HarnessError):
    """A component started but did not become healthy in time."""


class ProvisionError(HarnessError):
    """Applying the topology to a running backend failed."""


class ScenarioError(HarnessError):
    """A scenario file is invalid or a scenario step failed."""


class DeployError(HarnessError):
    """Rendering, planning or applying a deployment failed."""
