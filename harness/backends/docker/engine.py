"""The Docker engine and the project image: a client of the engine, the image's input digest, build and pull."""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError, ServiceStartError

if TYPE_CHECKING:
    from docker import DockerClient

APP_IMAGE_REPOSITORY = "saas-harness/app"
IMAGE_OVERRIDE_ENV = {  # e.g. HARNESS_DOCKER_POSTGRES_IMAGE=postgres:16.4 to pin an exact image
    "postgres": "HARNESS_DOCKER_POSTGRES_IMAGE",
    "redis": "HARNESS_DOCKER_REDIS_IMAGE",
    "app": "HARNESS_DOCKER_APP_IMAGE",
}
BUILD_ARGS_ENV = "HARNESS_DOCKER_BUILD_ARGS"  # "KEY=VALUE KEY=VALUE" for the project image's build
WHEELHOUSE_IMAGE = "saas-harness/wheelhouse:local"  # made by .ci/docker-setup where PyPI is out of reach
OFFLINE_BUILD_ARGS = {"DEPS_BASE": WHEELHOUSE_IMAGE, "PIP_INSTALL_OPTIONS": "--no-index --find-links /wheels"}
IMAGE_INPUTS = (
    "Dockerfile", ".dockerignore", "pyproject.toml", "constraints.txt", "topology.toml", "seed", "harness", "app",
)  # fmt: skip

ENGINE_TIMEOUT_SECONDS = 60
LOG_TAIL_LINES = 25

ENGINE_HINT = (
    "start a Docker engine (Docker Desktop, `sudo systemctl start docker`, or on a Debian machine like CI's "
    "`sudo bash .ci/docker-setup`), point DOCKER_HOST at one, or use the embedded tier: drop `--backend docker` "
    "/ unset HARNESS_BACKEND"
)


class EngineUnavailable(ServiceStartError):
    """No Docker engine answers (or the Docker SDK is missing)."""


@functools.lru_cache(maxsize=1)
def docker_client() -> DockerClient:
    """A client of the engine DOCKER_HOST (or the default socket) names; a clear error when none answers."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:
        raise EngineUnavailable(
            "the Docker tier needs the Docker SDK for Python (`docker`), which is not installed",
            hint="`pip install -e .` installs it (it is a dependency of the project)",
        ) from exc
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT_SECONDS)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(
            f"no Docker engine reachable at {where}: {short_error(exc)}", hint=ENGINE_HINT
        ) from exc
    return client


def engine_problem() -> str | None:
    """None when an engine answers, else why not (for skipping tests with the reason)."""
    try:
        docker_client()
    except HarnessError as exc:
        docker_client.cache_clear()
        return exc.message
    return None


def image_inputs_digest(project_dir: Path) -> str:
    """Digest of everything the project image is built from (file names and contents)."""
    h = hashlib.sha256()
    for rel in IMAGE_INPUTS:
        root = project_dir / rel
        paths = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                h.update(str(path.relative_to(project_dir)).encode() + b"\0")
                h.update(path.read_bytes())
    return h.hexdigest()


def app_image_name(project_dir: Path) -> str:
    return os.environ.get(IMAGE_OVERRIDE_ENV["app"]) or (
        f"{APP_IMAGE_REPOSITORY}:{image_inputs_digest(project_dir)[:12]}"
    )


_build_lock = threading.Lock()


def ensure_app_image(
    project_dir: Path,
    build_args: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> str:
    """The project image for the current inputs: present already, or built now (the deps layer is cached, so
    a change to the code alone rebuilds in seconds). Returns its name."""
    name = app_image_name(project_dir)
    with _build_lock:
        if _image_present(name) or os.environ.get(IMAGE_OVERRIDE_ENV["app"]):
            return name
        import docker.errors

        client = docker_client()
        build_args = dict(build_args) if build_args is not None else default_build_args()
        how = " (deps from the wheelhouse image)" if build_args.get("DEPS_BASE") == WHEELHOUSE_IMAGE else ""
        progress(f"building {name} from {project_dir / 'Dockerfile'}{how}")
        t0 = time.monotonic()
        lines: list[str] = []
        try:
            for chunk in client.api.build(
                path=str(project_dir),
                tag=name,
                buildargs=build_args,
                rm=True,
                forcerm=True,
                decode=True,
                labels={"harness.inputs": name.rsplit(":", 1)[1]},
            ):
                if "stream" in chunk:
                    lines.extend(chunk["stream"].rstrip("\n").splitlines())
                if "error" in chunk:
                    raise ServiceStartError(
                        f"building {name} failed: {chunk['error'].strip()}\n{indent_lines(lines[-LOG_TAIL_LINES:])}",
                        hint="fix the Dockerfile or its inputs; where PyPI or Docker Hub is unreachable, "
                        "`bash .ci/docker-setup` builds the image from a local wheelhouse",
                    )
        except docker.errors.DockerException as exc:
            raise ServiceStartError(f"building {name} failed: {short_error(exc)}", hint=ENGINE_HINT) from exc
        client.api.tag(name, APP_IMAGE_REPOSITORY, "latest")
        _untag_older(client, keep=name)
        progress(f"built {name} in {time.monotonic() - t0:.1f}s")
        return name


def _untag_older(client: DockerClient, keep: str) -> None:
    """Drop the tags of earlier builds (their layers go with them unless a container still uses one)."""
    import docker.errors

    for image in client.images.list(APP_IMAGE_REPOSITORY):
        for tag in image.tags:
            if tag not in (keep, f"{APP_IMAGE_REPOSITORY}:latest"):
                try:
                    client.images.remove(tag)
                except docker.errors.APIError:
                    pass  # in use by a container: it goes with a later build
    _present_images.clear()


def default_build_args() -> dict[str, str]:
    """$HARNESS_DOCKER_BUILD_ARGS; else, when this engine holds the wheelhouse image .ci/docker-setup makes,
    build offline from it (that engine's machine cannot reach PyPI); else none (pip uses PyPI)."""
    if explicit := os.environ.get(BUILD_ARGS_ENV):
        return dict(pair.split("=", 1) for pair in shlex.split(explicit))
    return dict(OFFLINE_BUILD_ARGS) if _image_present(WHEELHOUSE_IMAGE) else {}


_present_images: set[str] = set()  # "present" answers only: an image does not vanish under a running `up`


def _image_present(name: str) -> bool:
    import docker.errors

    if name in _present_images:
        return True
    try:
        docker_client().images.get(name)
    except docker.errors.ImageNotFound:
        return False
    _present_images.add(name)
    return True


def ensure_image(name: str, component: str) -> None:
    """Pull `name` when the engine does not have it; a clear error when that is impossible."""
    if _image_present(name):
        return
    import docker.errors

    try:
        docker_client().images.pull(name)
    except docker.errors.DockerException as exc:
        raise ServiceStartError(
            f"{component}: image {name} is not on this engine and could not be pulled: {short_error(exc)}",
            hint=f"`docker pull {name}` where its registry is reachable; offline, `bash .ci/docker-setup` "
            f"builds look-alikes under the same names; or set {IMAGE_OVERRIDE_ENV.get(component, 'the image')} "
            "to an image you have",
        ) from exc


def short_error(exc: BaseException) -> str:
    """The first line of an engine error (its explanation when it has one)."""
    text = str(getattr(exc, "explanation", None) or exc)
    return text.strip().splitlines()[0][:400] if text.strip() else type(exc).__name__


def indent_lines(lines: Iterable[str], prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in lines)
