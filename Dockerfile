# syntax=docker/dockerfile:1
#
# Container image of mailstore-spe-exporter.
#
#   docker build -t mailstore-spe-exporter .
#   docker run -d --name mailstore-spe-exporter -p 9474:9474 \
#     -v "$PWD/config.yml:/etc/mailstore-spe-exporter/config.yml:ro" \
#     -e SPE_PASSWORD=... mailstore-spe-exporter
#
# The process runs as PID 1 and handles SIGTERM/SIGINT itself (clean shutdown on
# `docker stop`). `docker run --init` is optional (it adds zombie reaping; the exporter
# starts no child processes). The root filesystem may be mounted read-only (--read-only);
# demo mode (no --config.file) additionally needs a writable /tmp (--tmpfs /tmp).
# A CA bundle or password file can be mounted anywhere, e.g. under /etc/mailstore-spe-exporter/.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build the wheel ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime -----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
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
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Extras installed with the wheel. "simulator" (cryptography) makes the demo mode work
# (no --config.file: the exporter polls its bundled SPE simulator, as docker-compose.yml
# does). Build with --build-arg EXTRAS= for an image without it.
ARG EXTRAS="[simulator]"
# The wheel is bind-mounted from the builder, so it does not stay in a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && for wheel in /wheels/*.whl; do \
         /opt/venv/bin/pip install --no-cache-dir "${wheel}${EXTRAS}"; \
       done \
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
