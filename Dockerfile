# syntax=docker/dockerfile:1
# Build stage: turn the source tree into a wheel (and its dependencies into wheels).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY druid ./druid
RUN python -m build --wheel --outdir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/druid-*.whl

# Final stage: only the interpreter and installed wheels; no compilers, runs as the non-root uid 65532.
FROM python:3.11-slim-bookworm
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels druid \
 && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin druid
USER 65532:65532
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["druid", "run"]
