"""pytest plugin (entry point `pytest11`): the session-wide `stack` fixture.

By default the first test that needs it starts a fresh stack on free ports in a temporary state dir and
the session stops and wipes it at the end. `--stack attach` uses the stack already up (`nox -s up`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.testing import RunningStack, attach_stack, start_stack


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness")
    group.addoption(
        "--stack",
        choices=("fresh", "attach"),
        default="fresh",
        help="fresh: start a stack on free ports for this session (default); attach: use the running one",
    )
    group.addoption("--stack-no-app", action="store_true", help="start only the infrastructure")


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[RunningStack]:
    """The running stack (infrastructure, provisioning, and the app unless --stack-no-app)."""
    if request.config.getoption("--stack") == "attach":
        yield attach_stack()
        return
    running = start_stack(with_app=not request.config.getoption("--stack-no-app"))
    try:
        yield running
    finally:
        running.stop()
