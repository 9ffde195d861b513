"""The Docker tier: the same topology as containers on a local Docker engine (`--backend docker`).

- `postgres:16` and `redis:7` (the topology's versions), the official images' environment and data dirs;
- the AWS emulator (`harness.emulator`: moto + persisted state + captured mail + fidelity checks) and the app
  (backend, worker, one-off migrate/seed) from the project's own image (`./Dockerfile`), built on demand and
  tagged with a digest of its inputs, so an edited app or harness is rebuilt and an unchanged one never is;
- every container carries the label `harness.project=<state dir>`; data lives in named volumes (it survives
  `down`/`up`, `reset` removes them); one network per state dir, on which the stores answer to their component
  names (`postgres:5432`, `redis:6379`, `aws:4566`); ports are published on 127.0.0.1 only.

One module per reason to change:

- `engine`: the Docker SDK client (imported lazily: the embedded tier never pays for it), the project image
  (digest of its inputs, build, pull);
- `project`: one state dir's names and labels (containers, volumes, network), cleanup and orphan pruning;
- `components`: each component as one small class with the embedded tier's shape (`prepare/start/stop/pid/
  health/readiness/connection`), so `LocalRunner`, provisioning and the env contract are the same code on
  both tiers;
- `tier`: `DockerTier`, the backend contract (`harness.backends.base.Tier`) as containers;
- `compose`: compose/docker-compose.yml generated from those classes, and its provisioning step;
- `launcher`: the program every app container starts with (`python -m harness.backends.docker.launcher`);
  standard library only, so this package imports nothing at import time.

testcontainers is used by the tests (its Postgres/Redis modules against our images); the harness's containers
are long-lived, named and re-attached by label on every command, which is not what testcontainers' throwaway
containers and reaper are for.

`python -m harness.backends.docker build-image [--build-arg K=V ...]` builds the project image (used by
.ci/docker-setup); `python -m harness.backends.docker compose` prints compose/docker-compose.yml.
"""
