"""Settings refuse unsafe or malformed configuration at start-up, with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 20 + "Zq8-random-production-secret-0123456789"


def load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}}
    clean.update({"VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "annotate.settings", **env})
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_a_missing_secret_key(tmp_path: Path) -> None:
    result = load_settings(tmp_path, DEBUG="false", ALLOWED_HOSTS="example.org")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("key", ["django-insecure-" + "x" * 50, "change-me", "short"])
def test_production_refuses_a_default_or_weak_secret_key(tmp_path: Path, key: str) -> None:
    result = load_settings(tmp_path, DEBUG="false", ALLOWED_HOSTS="example.org", SECRET_KEY=key)
    assert result.returncode != 0
    assert "SECRET_KEY is a default or development key" in result.stderr


def test_production_starts_with_a_real_key(tmp_path: Path) -> None:
    result = load_settings(tmp_path, DEBUG="false", ALLOWED_HOSTS="example.org", SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_development_generates_a_key_once(tmp_path: Path) -> None:
    assert load_settings(tmp_path, DEBUG="true").returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert load_settings(tmp_path, DEBUG="true").returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL must be"),
        ({"CELERY_BROKER_URL": "amqp://guest@localhost//"}, "CELERY_BROKER_URL must be"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL must start with"),
        ({"CELERY_TASK_SOFT_TIME_LIMIT": "400"}, "SOFT_TIME_LIMIT must be below"),
        (
            {"CONN_MAX_AGE": "soon", "DATABASE_URL": "postgres://u@h/db"},
            "CONN_MAX_AGE='soon' is not an integer",
        ),
        ({"DEBUG": "false", "SECRET_KEY": GOOD_KEY}, "ALLOWED_HOSTS must be set"),
        ({"CSRF_TRUSTED_ORIGINS": "example.org"}, "CSRF_TRUSTED_ORIGINS entry"),
    ],
)
def test_bad_values_stop_start_up_with_a_clear_message(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


@pytest.mark.django_db
def test_the_account_backend_loads_the_signed_in_user_like_model_backend() -> None:
    from django.contrib.auth.backends import ModelBackend

    from annotate.accounts.backends import AccountBackend
    from tests import factories

    user = factories.annotator("backend-user")
    ours, theirs = AccountBackend().get_user(user.pk), ModelBackend().get_user(user.pk)
    assert ours is not None and theirs is not None
    assert {f.attname: getattr(ours, f.attname) for f in user._meta.concrete_fields} == {
        f.attname: getattr(theirs, f.attname) for f in user._meta.concrete_fields
    }
    assert AccountBackend().get_user("not-a-number") is None
    assert AccountBackend().get_user(user.pk + 10_000) is None
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert AccountBackend().get_user(user.pk) is None
