# The project's image, multi-stage as aws-architecture.md ("Container Image Strategy") describes:
# Python deps -> app code -> slim runtime. One image, several entrypoints (the Docker tier picks the command):
#   backend   python -m uvicorn app.main:app --host 0.0.0.0 --port 8000
#   worker    python -m celery -A app.workers.celery_app worker
#   migrate   python -m alembic -c app/alembic.ini upgrade head        (one-off, as app_migrator)
#   seed      python -m app.seed seed/seed.yaml                        (one-off)
#   aws       python -m harness.emulator --host 0.0.0.0 --port 4566    (the Docker tier's AWS emulator)
#
# Built by `harness up --backend docker` when missing (tag = digest of the inputs), or by hand:
#   docker build -t saas-harness/app:dev .
# Offline (CI, see .ci/docker-setup): the deps stage starts from an image that already holds a wheelhouse, and
# pip never reaches an index:
#   docker build --build-arg DEPS_BASE=saas-harness/wheelhouse:local \
#                --build-arg PIP_INSTALL_OPTIONS="--no-index --find-links /wheels" .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG DEPS_BASE=${PYTHON_IMAGE}

# --- deps: a virtualenv with the runtime dependencies (pyproject.toml lists them, constraints.txt fixes the
# versions, as for the noxfile and CI: `nox -s lock` writes it) ---------------------------------------------
FROM ${DEPS_BASE} AS deps
ARG PIP_INSTALL_OPTIONS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY pyproject.toml constraints.txt ./
RUN python -m venv /opt/venv \
 && python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > requirements.txt \
 && /opt/venv/bin/pip install ${PIP_INSTALL_OPTIONS} -c constraints.txt -r requirements.txt \
 && rm -rf /opt/venv/lib/python3*/site-packages/pgserver/pginstall/include

# --- runtime: the venv + the code, as an unprivileged user ------------------------------------------------
FROM ${PYTHON_IMAGE} AS app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HARNESS_TOPOLOGY=/srv/topology.toml
RUN useradd --create-home --uid 10001 app \
 && mkdir -p /var/lib/aws /var/lib/harness && chown app:app /var/lib/aws /var/lib/harness
COPY --from=deps /opt/venv /opt/venv
WORKDIR /srv
COPY topology.toml ./
COPY seed ./seed
COPY harness ./harness
COPY app ./app
# Bytecode compiled once here (pip did the venv's): every container start would otherwise compile moto,
# boto3 and the app again, seconds of CPU per start.
RUN python -m compileall -q -j 0 /srv
USER app
EXPOSE 8000
CMD ["python", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
