# safezone production image: multi-stage, non-root, migrations at start.
# Build: docker build -t safezone .      Run: see compose.yaml (DATABASE_URL must point at a PostGIS).
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY geo ./geo
COPY storage ./storage
COPY service ./service
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install /src

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libexpat1 tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 safezone
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Rule packs, category mappings and static map assets are data, read from SAFEZONE_DATA_DIR.
COPY --chown=safezone:safezone data ./data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SAFEZONE_DATA_DIR=/app/data \
    SAFEZONE_STATE_DIR=/tmp/safezone \
    SAFEZONE_HOST=0.0.0.0 \
    SAFEZONE_PORT=8000
USER safezone
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2).status != 200)"
ENTRYPOINT ["tini", "--"]
# `safezone db up` with DATABASE_URL set creates the extension (if allowed) and migrates to head.
CMD ["sh", "-c", "safezone db up && exec safezone serve --host \"$SAFEZONE_HOST\" --port \"$SAFEZONE_PORT\" --workers \"${SAFEZONE_WORKERS:-2}\""]
