# parcours worker image: `docker build -t parcours:0.1.0 .`, then `docker run parcours:0.1.0`
# (runs `parcours worker`; any other subcommand works too: `docker run parcours:0.1.0 replay ...`).

# --- build: wheels of parcours and of its pinned dependencies --------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
COPY sinks ./sinks
RUN pip wheel --wheel-dir /wheels .

# --- runtime ---------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    PARCOURS_DATA_DIR=/data \
    PARCOURS_METRICS_PORT=9109 \
    PARCOURS_WEB_PORT=6066

# tini as PID 1: signals reach the worker (Faust leaves its consumer group cleanly on SIGTERM) and
# zombies are reaped. tzdata: IANA zones for event-time handling.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 parcours \
    && useradd --system --uid 10001 --gid parcours --home-dir /home/parcours --create-home parcours \
    && mkdir -p /data \
    && chown parcours:parcours /data

COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels parcours \
    && rm -rf /wheels

USER 10001:10001
WORKDIR /home/parcours
VOLUME ["/data"]
EXPOSE 9109 6066

# The worker serves Prometheus metrics on PARCOURS_METRICS_PORT: it answering means the process is up.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('PARCOURS_METRICS_PORT', '9109'), timeout=4)" || exit 1

ENTRYPOINT ["/usr/bin/tini", "--", "parcours"]
CMD ["worker"]
