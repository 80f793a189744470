# syntax=docker/dockerfile:1
# druid's container image:  docker build -t druid:0.1.0 .   (BuildKit: the final stage bind-mounts the wheels)
# Linted by test/unit/test_dockerfile.py (hadolint); the Deployment in manifests/ runs it read-only as 65532.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: wheels for druid and every dependency (all have manylinux wheels; no compiler needed).
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY druid ./druid
RUN pip wheel --wheel-dir /wheels .

# Final stage: the interpreter plus the installed wheels; no build tools, no pip cache, non-root.
FROM ${PYTHON_IMAGE}
ARG DRUID_VERSION=0.1.0
LABEL org.opencontainers.image.title="druid" \
      org.opencontainers.image.description="A Python drop-in replacement for Gardener's etcd-druid operator" \
      org.opencontainers.image.version="${DRUID_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "druid==${DRUID_VERSION}" \
 && groupadd --gid 65532 druid \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin druid
# Bytecode was compiled at install time; the root filesystem is read-only at run time.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["druid", "run"]
