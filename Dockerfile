# syntax=docker/dockerfile:1
# One image for every service (workers, beat, Flower, metrics, simulator, migrations); the command picks
# the role. Build:  docker build -t smspoint-dispatcher:local .
# Run:              docker run --rm smspoint-dispatcher:local            (prints `smsdispatch --help`)

# ---- build: install the project and its pinned dependencies into a virtualenv
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# .dockerignore lets in only pyproject.toml, requirements.lock, README.md, dispatcher/ and workers/.
COPY . .
# A regular (non-editable) install: migrations and simulator data ship as package data.
RUN pip install -c requirements.lock .

# ---- runtime: the virtualenv and an unprivileged user, nothing else
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Numeric uid/gid so Kubernetes `runAsNonRoot` can verify the user without a passwd lookup.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --create-home --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

# Writable working directory for runtime files (e.g. the beat schedule when not pointed at /tmp).
WORKDIR /app
USER 10001:10001

# Flower, gateway simulator, Prometheus exporter (documentation only; compose/k8s publish what they use).
EXPOSE 5555 8765 9808

CMD ["smsdispatch", "--help"]
