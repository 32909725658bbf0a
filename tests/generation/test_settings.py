"""Generation settings are checked at start-up against the broker's visibility timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GENERATION_", "CELERY_"))}
    clean.update({"VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "annotate.settings", **env})
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.GENERATION_MAX_ATTEMPTS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_a_retry_wait_longer_than_the_visibility_timeout_is_refused(tmp_path: Path) -> None:
    broker = {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/5"}
    result = load(tmp_path, **broker, CELERY_TASK_TIME_LIMIT="400", CELERY_TASK_SOFT_TIME_LIMIT="300",
                  CELERY_VISIBILITY_TIMEOUT="800", GENERATION_BACKOFF_MAX_S="500")  # fmt: skip
    assert result.returncode != 0
    assert "must stay below CELERY_VISIBILITY_TIMEOUT" in result.stderr
