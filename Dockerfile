# One image for the code server, the webserver and the daemon.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/dagster_home
WORKDIR /opt/analytics_ingest

# Dependencies first (better layer caching), then the project itself.
# rsync and ssh: the rsync_pull job runs the sites' rsync commands (over ssh or rsync://) in here.
RUN apt-get update \
    && apt-get install -y --no-install-recommends rsync openssh-client \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md ./
COPY analytics_ingest ./analytics_ingest
# Editable: Dagster's defs autoloader finds the project by the pyproject.toml beside the package.
RUN pip install --upgrade pip && pip install -e . && python -m compileall -q analytics_ingest

COPY deploy/dagster.yaml deploy/workspace.yaml ${DAGSTER_HOME}/

EXPOSE 3000 4000
# The code server (sensors run here, so the rsync'd log directories are mounted into it).
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "analytics_ingest.definitions", "--location-name", "analytics_ingest"]
