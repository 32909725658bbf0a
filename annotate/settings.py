"""The one settings module. Everything comes from the environment (see .env.example and README).

A bare checkout runs on embedded defaults: a SQLite file and a filesystem Celery broker under var/,
a development secret key generated once into var/. With DATABASE_URL, CELERY_BROKER_URL and REDIS_URL
set, the same code runs on PostgreSQL and Redis. Bad values stop start-up with ImproperlyConfigured.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var"))).resolve()


def _bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = env.str(name, default="")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def _list(name: str, default: list[str]) -> list[str]:
    raw = env.str(name, default="")
    if raw.strip() == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


DEBUG = _bool("DEBUG", True)

# --- Secret key -------------------------------------------------------------------------------
INSECURE_KEY_PREFIX = "django-insecure-"
_secret = env.str("SECRET_KEY", default="")
if not _secret:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG=False (50+ random characters).")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(INSECURE_KEY_PREFIX + secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    _secret = key_file.read_text().strip()
elif not DEBUG and (
    _secret.startswith(INSECURE_KEY_PREFIX) or len(_secret) < 32 or _secret in {"change-me", "changeme"}
):
    raise ImproperlyConfigured(
        "SECRET_KEY is a default or development key; with DEBUG=False set a random key of 32+ characters."
    )
SECRET_KEY = _secret

ALLOWED_HOSTS = _list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG=False (comma-separated host names).")
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not re.match(r"^https?://[^/\s]+$", _origin):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS entry {_origin!r} must look like https://host[:port]."
        )

# --- Applications -----------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "annotate.core",
    "annotate.accounts",
    "annotate.endpoints",
    "annotate.batches",
    "annotate.assignments",
    "annotate.judgments",
    "annotate.exports",
    "annotate.judges",
    "annotate.quality",
    "annotate.api",
    "annotate.workbench",
]

MIDDLEWARE = [
    "annotate.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so that static files get the CSP (frame-ancestors) and the other headers too.
    "annotate.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 503 (JSON or a self-reloading page) for a database outage in any view below.
    "annotate.core.unavailable.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "annotate.urls"
WSGI_APPLICATION = "annotate.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# Ours first (new sign-ins record it); ModelBackend stays so sessions that name it remain valid.
AUTHENTICATION_BACKENDS = [
    "annotate.accounts.backends.AccountBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "workbench:home"
CSRF_FAILURE_VIEW = "annotate.core.views.csrf_failure"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# --- Database ---------------------------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    _db = env.db_url_config(env.str("DATABASE_URL", default=_default_db))
except (ValueError, KeyError, ImproperlyConfigured) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _db["ENGINE"] not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
    raise ImproperlyConfigured("DATABASE_URL must be postgres://... or sqlite:///...")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server and the worker read while the other writes; IMMEDIATE takes the write
    # lock at BEGIN so concurrent writers queue on busy_timeout instead of failing mid-transaction.
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    _db["CONN_MAX_AGE"] = _int("CONN_MAX_AGE", 60)
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis / cache ----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    if urlparse(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="annotate"),
        }
    }
else:
    # Without Redis the cache (and so the rate limits) are per process: fine for one laptop.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "filesystem://"
_broker_scheme = urlparse(CELERY_BROKER_URL).scheme
if _broker_scheme not in {"filesystem", "redis", "rediss", "memory"}:
    raise ImproperlyConfigured("CELERY_BROKER_URL must be redis://..., rediss://... or filesystem://")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # tasks record their outcome in domain rows, not in a result backend
CELERY_TASK_SOFT_TIME_LIMIT = _int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = _int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT.")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that loses Redis reconnects for as long as it takes (Celery's default gives up after 100 tries,
# and the worker exits). Tasks running at that moment finish; their acknowledgement may be lost with the
# connection, so Redis redelivers them after the visibility timeout: every task is idempotent.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Celery's Django fixup closes the database connection after every task unless told to reuse it; a new
# PostgreSQL session per generation costs more than the generation's own queries.
CELERY_DB_REUSE_MAX = _int("CELERY_DB_REUSE_MAX", 1000, minimum=0)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "annotate.endpoints.tasks.*": {"queue": "generation"},
    "annotate.judges.tasks.*": {"queue": "generation"},
    "annotate.exports.tasks.*": {"queue": "exports"},
}
CELERY_BEAT_SCHEDULE = {
    "expire-stale-leases": {"task": "annotate.assignments.tasks.expire_stale_leases", "schedule": 60.0},
    # A hard time limit kills an export build without recording anything: this marks such jobs failed.
    "fail-stale-exports": {"task": "annotate.exports.tasks.fail_stale_exports", "schedule": 300.0},
    # Quality reports of batches with new judgments (and their tracks); see docs/quality.md.
    "recompute-quality": {
        "task": "annotate.quality.tasks.recompute_due_quality",
        "schedule": float(_int("QUALITY_RECOMPUTE_SECONDS", 600, minimum=10)),
    },
}
if _broker_scheme == "filesystem":
    _broker_dir = VAR_DIR / "celery"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
else:
    # The visibility timeout must outlast the longest task plus its retry backoff, or Redis would
    # redeliver a task that is still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=CELERY_TASK_TIME_LIMIT * 2),
    }

# --- Auth, sessions, security -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = _int("SESSION_COOKIE_AGE", 60 * 60 * 12, minimum=60)
# Sessions live in the database (the record) and, with Redis, are read through the cache: a page or
# submit then costs no session query. Without Redis the cache is per process, so the database alone.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db" if REDIS_URL else "django.contrib.sessions.backends.db"
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = _bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # Behind a TLS proxy every request arrives marked https (X-Forwarded-Proto), so this only redirects if
    # the proxy forgot to; the probes are exempt so that plain-http health checks work from inside.
    SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading commits the whole domain to HTTPS in browsers for months and is hard to undo: opt-in. Its
    # deploy-check warning (security.W021) is silenced while it stays off, as a decision, not an oversight.
    SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    if _bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalisation, static, media ------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))).resolve()
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Domain settings --------------------------------------------------------------------------
# Hosts an endpoint may use even though they resolve to loopback/private addresses (a local vLLM).
ALLOWED_ENDPOINT_HOSTS = _list("ALLOWED_ENDPOINT_HOSTS", [])
LOGIN_ATTEMPTS_PER_WINDOW = _int("LOGIN_ATTEMPTS_PER_WINDOW", 10, minimum=1)
LOGIN_WINDOW_SECONDS = _int("LOGIN_WINDOW_SECONDS", 300, minimum=1)
MAX_ACTIVE_LEASES_PER_ANNOTATOR = _int("MAX_ACTIVE_LEASES_PER_ANNOTATOR", 5, minimum=1)
IMPORT_MAX_ROW_BYTES = _int("IMPORT_MAX_ROW_BYTES", 1_000_000, minimum=1024)
# Prompt import (annotate/batches/imports.py): messages per conversation, characters per message or response,
# and the JSON size of a row's metadata object. A row is also bounded as a whole by IMPORT_MAX_ROW_BYTES.
IMPORT_MAX_MESSAGES = _int("IMPORT_MAX_MESSAGES", 200, minimum=1)
IMPORT_MAX_CONTENT_CHARS = _int("IMPORT_MAX_CONTENT_CHARS", 200_000, minimum=1)
IMPORT_MAX_METADATA_BYTES = _int("IMPORT_MAX_METADATA_BYTES", 65_536, minimum=2)
# Live prompts: the longest prompt (or next turn) an annotator may write, and the most turns one live
# dialogue may have (each turn adds a user and an assistant message; imports' IMPORT_MAX_MESSAGES bounds
# the conversation too).
LIVE_PROMPT_MAX_CHARS = _int("LIVE_PROMPT_MAX_CHARS", 20_000, minimum=1)
LIVE_MAX_TURNS = _int("LIVE_MAX_TURNS", 20, minimum=1)
# Generation (annotate/endpoints): deliveries of one response before it is marked failed, exponential backoff
# with jitter between tries (base doubles per attempt up to the cap), the cap on a server's Retry-After,
# how long a task waits for a free endpoint slot before it is re-queued, and enqueue/response-size bounds.
GENERATION_MAX_ATTEMPTS = _int("GENERATION_MAX_ATTEMPTS", 6, minimum=1)
GENERATION_BACKOFF_BASE_MS = _int("GENERATION_BACKOFF_BASE_MS", 2000, minimum=1)
GENERATION_BACKOFF_MAX_S = _int("GENERATION_BACKOFF_MAX_S", 300, minimum=1)
GENERATION_RETRY_AFTER_MAX_S = _int("GENERATION_RETRY_AFTER_MAX_S", 300, minimum=1)
GENERATION_SLOT_WAIT_MS = _int("GENERATION_SLOT_WAIT_MS", 5000, minimum=0)
GENERATION_ENQUEUE_CHUNK = _int("GENERATION_ENQUEUE_CHUNK", 1000, minimum=1)
GENERATION_CHUNK_SIZE = _int("GENERATION_CHUNK_SIZE", 8, minimum=1)
GENERATION_MAX_RESPONSE_BYTES = _int("GENERATION_MAX_RESPONSE_BYTES", 8_000_000, minimum=1024)
GENERATION_QUEUE = CELERY_TASK_ROUTES["annotate.endpoints.tasks.*"]["queue"]
# AI judges (annotate/judges): items per judging task (each judged twice, in both display orders). A task pays
# Celery's and the database's per-task costs once for all of them; smaller chunks spread a run's tail better.
JUDGE_CHUNK_ITEMS = _int("JUDGE_CHUNK_ITEMS", 8, minimum=1)
# Seconds between sweeps that triage items whose human judgments arrived after the judge's.
JUDGE_TRIAGE_SWEEP_S = _int("JUDGE_TRIAGE_SWEEP_S", 300, minimum=10)
CELERY_BEAT_SCHEDULE["judge-triage-sweep"] = {
    "task": "annotate.judges.triage.judge_triage_sweep",
    "schedule": float(JUDGE_TRIAGE_SWEEP_S),
}
if _broker_scheme != "filesystem":
    # A retried task waits out its countdown inside a worker, unacknowledged: countdown plus run time must
    # end before Redis gives up on the worker and redelivers the message.
    _longest_wait = max(GENERATION_BACKOFF_MAX_S, GENERATION_RETRY_AFTER_MAX_S) + CELERY_TASK_TIME_LIMIT
    if _longest_wait >= CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]:  # type: ignore[operator]
        raise ImproperlyConfigured(
            "GENERATION_BACKOFF_MAX_S and GENERATION_RETRY_AFTER_MAX_S plus CELERY_TASK_TIME_LIMIT must stay "
            "below CELERY_VISIBILITY_TIMEOUT."
        )

# --- DRF ----------------------------------------------------------------------------------------
# The v1 API (annotate/api). Scripts authenticate with personal API tokens (knox, stored as SHA-512 digests,
# header `Authorization: Token <token>`); the browser with its session (CSRF enforced). A request that
# carries an Authorization header is never authenticated by its cookie.
API_TOKEN_RATE_PER_MINUTE = _int("API_TOKEN_RATE_PER_MINUTE", 600, minimum=1)
API_SESSION_RATE_PER_MINUTE = _int("API_SESSION_RATE_PER_MINUTE", 600, minimum=1)
API_ANON_RATE_PER_MINUTE = _int("API_ANON_RATE_PER_MINUTE", 60, minimum=1)
API_MAX_TOKENS_PER_USER = _int("API_MAX_TOKENS_PER_USER", 20, minimum=1)
# Wrong API tokens one client address may send per LOGIN_WINDOW_SECONDS before it gets 429; and tokens one
# user may create per window (LOGIN_ATTEMPTS_PER_WINDOW, like sign-ins).
API_TOKEN_FAILURES_PER_WINDOW = _int("API_TOKEN_FAILURES_PER_WINDOW", 30, minimum=1)
# How long an Idempotency-Key is remembered (its first response replayed) before the key may be reused.
API_IDEMPOTENCY_TTL_HOURS = _int("API_IDEMPOTENCY_TTL_HOURS", 24 * 7, minimum=1)
# Work whose task was lost (sending it failed after its transaction committed, or a broker outage dropped
# it) is sent again by a periodic sweep: generating batches with no attempt for STALE_WORK_AFTER_S, live
# responses untouched as long, exports still queued as long (annotate/core/tasks.py).
STALE_WORK_AFTER_S = _int(
    "STALE_WORK_AFTER_S",
    900,
    minimum=CELERY_TASK_TIME_LIMIT + max(GENERATION_BACKOFF_MAX_S, GENERATION_RETRY_AFTER_MAX_S),
)
STALE_WORK_SWEEP_S = _int("STALE_WORK_SWEEP_S", 300, minimum=10)
CELERY_BEAT_SCHEDULE["requeue-stale-work"] = {
    "task": "annotate.core.tasks.requeue_stale_work",
    "schedule": float(STALE_WORK_SWEEP_S),
}
CELERY_BEAT_SCHEDULE["purge-api-records"] = {
    "task": "annotate.api.tasks.purge_api_records",
    "schedule": 60.0 * 60,
}
KNOX_TOKEN_MODEL = "api.ApiToken"
# knox's own AuthToken is swapped out for api.ApiToken. Its migrations would still create an unused
# knox_authtoken table, whose foreign key to users makes every TRUNCATE of users (test flushes) fail.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_PREFIX": "annot_",  # recognisable by secret scanners; the 64 hex characters follow
    "TOKEN_TTL": None,  # each token's expiry is chosen when it is created (or none)
    "AUTO_REFRESH": False,
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotate.api.authentication.TokenAuthentication",
        "annotate.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["annotate.api.throttling.PerTokenThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "token": f"{API_TOKEN_RATE_PER_MINUTE}/min",
        "session": f"{API_SESSION_RATE_PER_MINUTE}/min",
        "anon": f"{API_ANON_RATE_PER_MINUTE}/min",
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["annotate.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "annotate.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "annotate.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "annotate.api.schema.ApiAutoSchema",
    "URL_FORMAT_OVERRIDE": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Preference annotation API",
    "DESCRIPTION": (
        "The v1 API of the preference annotation platform. Authenticate scripts with a personal API token "
        "(`Authorization: Token <token>`, created on the API tokens page or at `/api/v1/tokens/`); the "
        "browser uses its session and must send the CSRF token on writes. Every error is "
        '`{"error": {"code", "message", "fields"}}`. Writes accept an `Idempotency-Key` header.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "TrackEnum": "annotate.core.choices.Track",
        "ModeEnum": "annotate.core.choices.Mode",
        "BatchStatusEnum": "annotate.batches.models.BatchStatus",
        "ItemStatusEnum": "annotate.batches.models.ItemStatus",
        "ResponseStatusEnum": "annotate.batches.models.ResponseStatus",
        "AssignmentStatusEnum": "annotate.assignments.models.AssignmentStatus",
        "ExportStatusEnum": "annotate.exports.models.ExportStatus",
    },
}

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level.")
# json: one JSON object per line (ts, level, logger, message, request_id, ...), for log shippers; plain: for
# reading in a terminal. Workers log the same way (Celery does not replace this configuration).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json").lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "annotate.core.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "annotate.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
