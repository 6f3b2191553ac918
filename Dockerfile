# syntax=docker/dockerfile:1
#
# Container image of mailstore-spe-exporter. Two targets:
#
#   docker build -t mailstore-spe-exporter .                      # the exporter (default)
#   docker build --target demo -t mailstore-spe-exporter:demo .   # + the SPE simulator, runs --demo
#
#   docker run -d --name mailstore-spe-exporter -p 9474:9474 \
#     -v "$PWD/config.yml:/etc/mailstore-spe-exporter/config.yml:ro" \
#     -e SPE_PASSWORD=... mailstore-spe-exporter
#
# Build args: VERSION, REVISION (git commit: `--build-arg REVISION=$(git rev-parse HEAD)`,
# shown as the revision label of mailstore_spe_exporter_build_info), CREATED.
#
# The process runs as PID 1 and handles SIGTERM/SIGINT itself (clean shutdown on
# `docker stop`). `docker run --init` is optional (it adds zombie reaping; the exporter
# starts no child processes). The root filesystem may be mounted read-only (--read-only);
# the demo image additionally needs a writable /tmp (--tmpfs /tmp) for its certificate.
# A CA bundle or password file can be mounted anywhere, e.g. under /etc/mailstore-spe-exporter/.
#
# Dependencies are installed at the versions of constraints.txt (kept current by
# scripts/lock.py), never resolved afresh at build time. The final images carry no pip.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build the wheel ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE constraints.txt ./
COPY exporter ./exporter
ARG REVISION=
# setup.py writes the commit into the wheel (exporter/REVISION).
RUN MAILSTORE_SPE_EXPORTER_REVISION="${REVISION}" pip wheel --no-deps --wheel-dir /wheels .

# --- the virtualenvs: the exporter alone, and with the simulator -------------------------------
# Both at /opt/venv (their scripts name that path), without pip once installed.
FROM builder AS venv
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --constraint constraints.txt /wheels/*.whl \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools

FROM builder AS venv-demo
RUN python -m venv /opt/venv \
    && for wheel in /wheels/*.whl; do \
         /opt/venv/bin/pip install --no-cache-dir --constraint constraints.txt "${wheel}[simulator]"; \
       done \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools

# --- what both images share -------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mailstore-spe-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the MailStore Service Provider Edition (SPE) Management API" \
      org.opencontainers.image.source="https://github.com/mailstore-spe-exporter/mailstore-spe-exporter" \
      org.opencontainers.image.url="https://github.com/mailstore-spe-exporter/mailstore-spe-exporter" \
      org.opencontainers.image.documentation="https://github.com/mailstore-spe-exporter/mailstore-spe-exporter/blob/main/README.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

# glibc's malloc is tuned by the exporter itself at start (exporter/allocator.py); set
# MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ here only to override it.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The base image's own pip, setuptools and wheel go too: nothing installs at run time.
RUN python -m pip uninstall --yes pip setuptools wheel \
    && mkdir -p /etc/mailstore-spe-exporter

# Numeric non-root user and group (no entry in /etc/passwd needed).
USER 65532:65532
EXPOSE 9474

# Python instead of curl/wget, which the slim image does not have. Adapt the port if you
# change web.listen_address.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:9474/-/healthy', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["mailstore-spe-exporter"]
CMD ["--config.file=/etc/mailstore-spe-exporter/config.yml"]

# --- demo: polls the bundled SPE simulator (its alerts fire: never in production) ---------------
FROM runtime AS demo
COPY --from=venv-demo /opt/venv /opt/venv
CMD ["--demo", "--web.listen-address=0.0.0.0:9474"]

# --- the default image: the exporter alone ------------------------------------------------------
FROM runtime AS exporter
COPY --from=venv /opt/venv /opt/venv
