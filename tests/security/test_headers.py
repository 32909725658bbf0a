"""Security headers on every kind of response, HSTS with production settings, and a clean deploy check.

The production checks run in a subprocess with DEBUG=false and a real-looking environment, exactly as the
app starts in docker compose; the settings module reads them at import, so they cannot be faked in-process.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests import factories

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.django_db


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    env.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "annotate.example.org",
            "CSRF_TRUSTED_ORIGINS": "https://annotate.example.org",
            "VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "annotate.settings",
            **extra,
        }
    )
    return env


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_would_catch_an_unsafe_production_setting(tmp_path: Path) -> None:
    """The check above can fail: turning HSTS off is reported."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path, SECURE_HSTS_SECONDS="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "security.W004" in result.stdout + result.stderr


PROBE = r"""
import json, django
django.setup()
from django.test import Client
from django.test.utils import override_settings, setup_test_environment
setup_test_environment()
# Static files are not collected here (the image does that): plain storage instead of the manifest.
override_settings(STORAGES={
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}).enable()
client = Client(HTTP_HOST="annotate.example.org")
out = {}
for name, kwargs in {
    "https page": {"path": "/accounts/login/", "secure": True},
    "https api": {"path": "/api/v1/me/", "secure": True},
    "https 404": {"path": "/nowhere/", "secure": True},
    "http page": {"path": "/accounts/login/", "secure": False},
    "http readyz": {"path": "/healthz", "secure": False},
}.items():
    response = client.get(kwargs["path"], secure=kwargs["secure"])
    out[name] = {"status": response.status_code, "headers": dict(response.headers)}
print(json.dumps(out))
"""


def test_production_responses_carry_hsts_and_redirect_plain_http(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=production_env(tmp_path, DATABASE_URL=os.environ.get("DATABASE_URL", "sqlite:///:memory:")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("https page", "https api", "https 404"):
        headers = seen[name]["headers"]
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains", name
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], name
        assert headers["Referrer-Policy"] == "same-origin", name
        assert headers["X-Content-Type-Options"] == "nosniff", name
    assert seen["https page"]["status"] == 200
    assert seen["http page"]["status"] == 301
    assert seen["http page"]["headers"]["Location"].startswith("https://annotate.example.org/")
    assert seen["http readyz"]["status"] == 200, "probes are exempt from the redirect"


def _assert_headers(response: Any, what: str) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, what
    assert response.headers.get("Referrer-Policy") == "same-origin", what
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert "Strict-Transport-Security" not in response.headers, f"{what}: no HSTS with DEBUG (tests)"
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert "'unsafe-eval'" not in csp, what
    if not what.startswith("admin"):  # Django's admin ships inline scripts of its own
        assert directives["script-src"] == ["'self'"], what
    if not what.startswith(("admin", "api docs")):  # Swagger UI styles its widgets inline
        assert "unsafe-inline" not in csp, what


def test_every_kind_of_response_carries_the_headers(annotator: Any, batch_admin: Any) -> None:
    batch = factories.ready_batch(items=1)
    anonymous = Client()
    signed_in = Client()
    signed_in.force_login(annotator)
    admin = Client()
    admin.force_login(batch_admin)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(annotator)
    responses = {
        "login page": anonymous.get("/accounts/login/"),
        "redirect to login": anonymous.get("/"),
        "workbench home": signed_in.get("/"),
        "guidelines": signed_in.get(f"/b/{batch.pk}/guidelines/"),
        "page 404": signed_in.get("/a/999999/"),
        "api json": signed_in.get("/api/v1/me/"),
        "api 401": anonymous.get("/api/v1/me/"),
        "api 404": anonymous.get("/api/nope"),
        "api docs": anonymous.get("/api/docs/"),
        "csrf failure": strict.post("/a/1/submit/", {}),
        "healthz": anonymous.get("/healthz"),
        "readyz": anonymous.get("/readyz"),
        "static file": anonymous.get("/static/js/workbench.js"),
        "admin index": admin.get("/admin/"),
        "admin changelist": admin.get("/admin/batches/batch/"),
    }
    for what, response in responses.items():
        assert response.status_code < 500, (what, response.status_code)
        _assert_headers(response, what)
