# The application image: web (gunicorn), Celery workers and beat all run from it (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_CONCURRENCY=4

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

# Dependencies first, so that code changes reuse this layer.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# Only what the application needs at run time (no .venv, var/, .git or local .env from the checkout).
COPY manage.py pyproject.toml ./
COPY annotate ./annotate
COPY frontend ./frontend

# Static files are collected into the image (served by WhiteNoise). The settings demand a real-looking
# SECRET_KEY and ALLOWED_HOSTS when DEBUG=false: a throwaway key is generated for this step only, and
# VAR_DIR points at a scratch folder that is removed again.
RUN DEBUG=false \
    SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    ALLOWED_HOSTS=localhost \
    VAR_DIR=/tmp/build-var \
    python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-var \
    && mkdir -p /app/var /data/media \
    && chown app:app /app/var /data/media

USER app

EXPOSE 8000

# WEB_CONCURRENCY sets gunicorn's worker count.
CMD ["gunicorn", "annotate.wsgi:application", "--bind", "0.0.0.0:8000", "--graceful-timeout", "30", \
     "--worker-tmp-dir", "/dev/shm", "--access-logfile", "-"]
