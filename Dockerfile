# syntax=docker/dockerfile:1
# Roost API image: gunicorn managing uvicorn workers, as a non-root user.

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /srv/roost
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /srv/roost --shell /usr/sbin/nologin roost
WORKDIR /srv/roost
COPY --from=build --chown=roost:roost /srv/roost /srv/roost
# The media volume mounts here: a new volume takes this folder's owner, so roost can write it.
RUN install -d -o roost -g roost /srv/roost/data /srv/roost/data/media
ENV PATH="/srv/roost/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    ROOST_ENV=production \
    ROOST_DATA_DIR=/srv/roost/data
USER roost
EXPOSE 8000
# The API's; compose.yaml gives `roost worker` its own and turns it off for `roost migrate`.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-m", "app.healthcheck", "http"]
CMD ["gunicorn", "app.http:create_app()", \
     "--worker-class", "app.gunicorn_worker.RoostWorker", \
     "--bind", "0.0.0.0:8000", \
     "--workers", "2", \
     "--graceful-timeout", "20"]
