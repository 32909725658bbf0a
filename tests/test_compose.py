"""The deployment files agree with the code: docker-compose.yml, Dockerfile, .env.example, Makefile, .ci/run.

No database: these tests read files, import modules and resolve URLs. Each check goes through a helper that
is also fed a deliberately wrong input, so that a helper which always says "fine" fails here.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.conf import settings
from django.core.management import get_commands
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS = ROOT / "annotate" / "settings.py"
MAKEFILE = ROOT / "Makefile"
CI_RUN = ROOT / ".ci" / "run"
CHECK_SERVICES = ROOT / "bin" / "check_services.py"

INFRA_SERVICES = {"db", "redis"}
ENV_HELPERS = {"_bool", "_int", "_list"}  # settings.py's typed readers; env.<anything>("NAME") too
# A celery command line in the Makefile: `$(CELERY) <arguments> </dev/null &`.
CELERY_LINE = re.compile(r"\$\(CELERY\)([^<\n]*)<")
SETTINGS_ENV_VARS = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}


# --- Helpers --------------------------------------------------------------------------------------
@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def app_services() -> dict[str, dict[str, Any]]:
    """The services that run this code (built from the Dockerfile), not PostgreSQL or Redis."""
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def argv_of(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def option_values(argv: list[str], short: str, long: str) -> list[str]:
    """Values of an option given as `-Q x`, `-Qx`, `--queues x` or `--queues=x`."""
    values: list[str] = []
    for i, arg in enumerate(argv):
        if arg in {short, long} and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(long + "="):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith(short) and not arg.startswith("--") and len(arg) > len(short):
            values.append(arg[len(short) :])
    return values


def import_target(spec: str) -> object:
    """`package.module:attr.attr` as gunicorn resolves it; raises ImportError or AttributeError."""
    module_name, _, attrs = spec.partition(":")
    obj: object = importlib.import_module(module_name)
    for attr in attrs.split(".") if attrs else []:
        obj = getattr(obj, attr)
    return obj


def known_queues() -> set[str]:
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return routed | {settings.CELERY_TASK_DEFAULT_QUEUE, "default"}


def consumed_queues(argv: list[str]) -> set[str]:
    return {
        q.strip() for value in option_values(argv, "-Q", "--queues") for q in value.split(",") if q.strip()
    }


def command_problems(command: str | list[str]) -> list[str]:
    """What is wrong with a container command: unknown program, unimportable app, unknown queue..."""
    argv = argv_of(command)
    if not argv:
        return ["empty command"]
    program = Path(argv[0]).name
    problems: list[str] = []
    if program == "gunicorn":
        specs = [a for a in argv[1:] if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", a)]
        if len(specs) != 1:
            return [f"gunicorn needs exactly one module:attribute, got {specs}"]
        try:
            if not callable(import_target(specs[0])):
                problems.append(f"{specs[0]} is not a WSGI callable")
        except (ImportError, AttributeError) as exc:
            problems.append(f"{specs[0]} is not importable: {exc!r}")
    elif program == "celery":
        apps = option_values(argv, "-A", "--app")
        if len(apps) != 1:
            return [f"celery needs exactly one -A/--app, got {apps}"]
        try:
            if not isinstance(find_app(apps[0]), Celery):
                problems.append(f"-A {apps[0]} does not name a Celery app")
        except (ImportError, AttributeError) as exc:
            problems.append(f"-A {apps[0]} is not importable: {exc!r}")
        subcommand = [a for a in argv[1:] if a in {"worker", "beat"}]
        if not subcommand:
            problems.append("celery command is neither worker nor beat")
        problems += [
            f"queue {q!r} is not routed to by CELERY_TASK_ROUTES"
            for q in consumed_queues(argv) - known_queues()
        ]
        if "worker" in subcommand and not consumed_queues(argv):
            problems.append("a worker should name its queues with -Q")
    elif program.startswith("python") and argv[1:2] == ["manage.py"]:
        if not (ROOT / "manage.py").exists():
            problems.append("manage.py is missing")
        if len(argv) < 3 or argv[2] not in get_commands():
            problems.append(f"unknown management command {argv[2:3]}")
    else:
        problems.append(f"unknown program {argv[0]!r}")
    return problems


def healthcheck_path(test: str | list[str]) -> str:
    text = test if isinstance(test, str) else " ".join(test)
    match = re.search(r"https?://[^/'\"\s]+(/[^'\"\s?)]*)", text)
    if not match:
        raise AssertionError(f"no http:// URL in the health check {text!r}")
    return match.group(1)


def path_resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def compose_variables(node: object) -> set[str]:
    """`${VAR}`, `${VAR:-x}`, `${VAR:?x}` and `$VAR` in every string of the parsed file (comments are not
    interpolated), but not the `$$` escapes meant for the container's shell."""
    if isinstance(node, dict):
        return set().union(*(compose_variables(k) | compose_variables(v) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(compose_variables(item) for item in node))
    if not isinstance(node, str):
        return set()
    text = node.replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)) | set(
        re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text)
    )


def documented_variables(text: str) -> set[str]:
    """Names in .env.example, set (`NAME=x`) or shown commented out (`# NAME=x`)."""
    return set(re.findall(r"^[ \t]*#?[ \t]*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def settings_variables(source: str) -> set[str]:
    """Every NAME in `env.<reader>("NAME", ...)` and `_bool/_int/_list("NAME", ...)` calls."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        func = node.func
        is_helper = isinstance(func, ast.Name) and func.id in ENV_HELPERS | {"env"}
        is_env_method = (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
        )
        if (is_helper or is_env_method) and re.fullmatch(r"[A-Z][A-Z0-9_]*", first.value):
            names.add(first.value)
    return names


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}` and `$$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op") or "", match.group("arg") or ""
        current = variables.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in {":?", "?"} and not current:
            raise ValueError(f"{name}: {arg}")
        return current or ""

    pattern = r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}"
    return re.sub(pattern, replace, value)


def settings_check(env: Mapping[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy` in a fresh process with exactly this deployment environment."""
    settings_names = settings_variables(SETTINGS.read_text())
    # Only the deployment's variables: not this test run's (nor conftest's DJANGO_ALLOW_ASYNC_UNSAFE).
    clean = {k: v for k, v in os.environ.items() if k not in settings_names and not k.startswith("DJANGO_")}
    clean.update({"VAR_DIR": str(tmp_path / "var"), **env})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def dockerfile_cmd(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    commands = re.findall(r"^CMD\s+(\[.*\])\s*$", joined, flags=re.MULTILINE)
    if len(commands) != 1:
        raise AssertionError(f"expected one exec-form CMD, found {commands}")
    return json.loads(commands[0])


def makefile_targets(text: str) -> set[str]:
    targets: set[str] = set()
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.%/$() -]+?)\s*:(?![=:])", line)
        if match and not line.startswith("\t"):
            targets.update(match.group(1).split())
    return targets


def makefile_recipe(text: str, target: str) -> str:
    """The recipe lines of one rule (with its `\\` continuations)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"^{re.escape(target)}\s*:(?![=:])(?!.*\bexport\b)", line):
            recipe = []
            for following in lines[i + 1 :]:
                if not following.startswith("\t"):
                    break
                recipe.append(following)
            return "\n".join(recipe)
    raise AssertionError(f"no rule for {target!r}")


def calls_make_test(script: str) -> bool:
    code = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    return any(re.fullmatch(r"(exec\s+)?make\s+test(\s.*)?", line) for line in code)


def load_check_services() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_services", CHECK_SERVICES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


# --- docker-compose.yml -----------------------------------------------------------------------------
def test_compose_has_the_services() -> None:
    services = compose()["services"]
    assert {"db", "redis", "migrate", "web", "worker", "generation", "beat"} <= set(services)
    assert set(app_services()) == set(services) - INFRA_SERVICES


@pytest.mark.parametrize(
    "name", sorted(set(yaml.safe_load(COMPOSE.read_text())["services"]) - INFRA_SERVICES)
)
def test_app_service_command_names_real_code(name: str) -> None:
    assert command_problems(app_services()[name]["command"]) == []


@pytest.mark.parametrize(
    "command",
    [
        "gunicorn annotate.wsgi:no_such_application --bind 0.0.0.0:8000",
        "gunicorn annotate.no_such_module:application",
        "celery -A no_such_project worker -Q default",
        "celery -A annotate worker -Q default,no_such_queue",
        "celery -A annotate worker",
        ["python", "manage.py", "no_such_command"],
        "uwsgi --module annotate.wsgi",
    ],
)
def test_command_check_rejects_wrong_names(command: str | list[str]) -> None:
    assert command_problems(command) != []


def test_project_package_exposes_the_celery_app() -> None:
    import annotate

    assert isinstance(annotate.celery_app, Celery)
    assert find_app("annotate") is annotate.celery_app


def test_every_routed_queue_has_a_compose_worker() -> None:
    consumed: set[str] = set()
    for svc in app_services().values():
        consumed |= consumed_queues(argv_of(svc["command"]))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {settings.CELERY_TASK_DEFAULT_QUEUE} <= consumed


def test_app_services_wait_for_healthy_infrastructure_and_migrations() -> None:
    services = app_services()
    for name, svc in services.items():
        depends = svc["depends_on"]
        assert depends["db"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        if name != "migrate":
            assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert command_problems(services["migrate"]["command"]) == []
    assert "migrate" in argv_of(services["migrate"]["command"])
    for name in INFRA_SERVICES:
        assert "healthcheck" in compose()["services"][name], name


def test_web_health_check_probes_readyz_on_the_gunicorn_port() -> None:
    web = app_services()["web"]
    test = web["healthcheck"]["test"]
    assert healthcheck_path(test) == "/readyz"
    assert path_resolves(healthcheck_path(test))
    assert resolve("/readyz").url_name == "readyz"
    bind = option_values(argv_of(web["command"]), "-b", "--bind")
    assert bind and bind[0].rsplit(":", 1)[1] in " ".join(test if isinstance(test, list) else [test])


@pytest.mark.parametrize("path", ["/no-such-probe", "/readyz/extra"])
def test_unknown_probe_paths_do_not_resolve(path: str) -> None:
    assert not path_resolves(path)


def test_compose_variables_are_documented_in_env_example() -> None:
    used = compose_variables(compose())
    assert {"SECRET_KEY", "WEB_CONCURRENCY", "GENERATION_CONCURRENCY"} <= used
    assert used - documented_variables(ENV_EXAMPLE.read_text()) == set()


def test_compose_variable_scan_catches_an_undocumented_one() -> None:
    broken = {
        **compose(),
        "extra": {
            "command": "run --n ${SURELY_NOT_DOCUMENTED_VAR:-x} $ALSO_NOT_DOCUMENTED $$ESCAPED_FOR_SHELL"
        },
    }
    missing = compose_variables(broken) - documented_variables(ENV_EXAMPLE.read_text())
    assert missing == {"SURELY_NOT_DOCUMENTED_VAR", "ALSO_NOT_DOCUMENTED"}


def test_compose_app_environment_is_a_valid_production_configuration(tmp_path: Path) -> None:
    variables = {"SECRET_KEY": secrets.token_urlsafe(50)}
    env = {k: interpolate(str(v), variables) for k, v in compose()["x-app-env"].items()}
    assert env["DEBUG"] == "false"
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS", "MEDIA_ROOT"):
        assert env[name], name
    for svc in app_services().values():
        assert svc["environment"] == compose()["x-app-env"]
        assert any(volume.endswith(":" + env["MEDIA_ROOT"]) for volume in svc["volumes"])
    result = settings_check(env, tmp_path)
    assert result.returncode == 0, result.stderr


def test_settings_check_fails_on_a_broken_production_configuration(tmp_path: Path) -> None:
    result = settings_check({"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50)}, tmp_path)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_compose_requires_a_secret_key() -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        interpolate(compose()["x-app-env"]["SECRET_KEY"], {})
    assert interpolate("${A:-x}/${B-y}/$${C}", {"B": ""}) == "x//${C}"


# --- .env.example -------------------------------------------------------------------------------
def test_every_settings_variable_is_documented_in_env_example() -> None:
    read = settings_variables(SETTINGS.read_text())
    assert read >= SETTINGS_ENV_VARS  # the scan itself works
    assert read - documented_variables(ENV_EXAMPLE.read_text()) == set()


def test_settings_scan_catches_an_undocumented_variable() -> None:
    source = (
        SETTINGS.read_text() + '\nX = _int("SURELY_NOT_DOCUMENTED", 1)\nY = env.str("NOR_THIS", default="")\n'
    )
    missing = settings_variables(source) - documented_variables(ENV_EXAMPLE.read_text())
    assert missing == {"SURELY_NOT_DOCUMENTED", "NOR_THIS"}


def test_env_example_documents_each_variable_with_a_comment() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^#?\s*[A-Z][A-Z0-9_]*=", line):
            assert i > 0 and lines[i - 1].startswith("#"), f"no comment above {line!r}"
    assert documented_variables(ENV_EXAMPLE.read_text()) >= {
        "PORT",
        "WEB_CONCURRENCY",
        "GENERATION_CONCURRENCY",
    }


# --- Dockerfile -----------------------------------------------------------------------------------
def test_dockerfile_cmd_serves_the_wsgi_application() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, flags=re.MULTILINE)
    assert re.search(r"^USER (?!root\b)\S+", text, flags=re.MULTILINE)
    assert "collectstatic" in text
    assert command_problems(dockerfile_cmd(text)) == []


def test_dockerfile_cmd_check_rejects_a_wrong_module() -> None:
    text = DOCKERFILE.read_text().replace("annotate.wsgi:application", "annotate.wsgi:app")
    assert command_problems(dockerfile_cmd(text)) != []


# --- Makefile and CI -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target", ["run", "test", "venv", "venv-dev", "lint", "fmt", "migrate", "seed", "bench", "clean"]
)
def test_makefile_has_target(target: str) -> None:
    assert target in makefile_targets(MAKEFILE.read_text())


@pytest.mark.parametrize("target", ["deploy", "install"])
def test_makefile_target_scan_rejects_missing_targets(target: str) -> None:
    assert target not in makefile_targets(MAKEFILE.read_text())


def test_make_run_starts_web_worker_and_beat_on_every_queue() -> None:
    recipe = makefile_recipe(MAKEFILE.read_text(), "run")
    assert "runserver" in recipe
    lines = [["celery", *shlex.split(m.group(1))] for m in CELERY_LINE.finditer(recipe)]
    celery = {next(a for a in argv if a in {"worker", "beat"}): argv for argv in lines}
    assert set(celery) == {"worker", "beat"}
    assert command_problems(celery["worker"]) == []
    assert command_problems(celery["beat"]) == []
    assert known_queues() <= consumed_queues(celery["worker"])
    assert "trap" in recipe


def test_make_test_defaults_match_check_services() -> None:
    text = MAKEFILE.read_text()
    defaults = dict(re.findall(r"^TEST_([A-Z_]+_URL) := (\S+)$", text, flags=re.MULTILINE))
    assert defaults == load_check_services().DEFAULTS


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_dry_run_of_test_runs_every_check() -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    }
    result = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    for step in (
        "bin/check_services.py",
        "ruff check",
        "ruff format --check",
        "makemigrations --check",
        "pytest",
    ):
        assert step in result.stdout, step
    pytest_line = next(line for line in result.stdout.splitlines() if "-m pytest" in line)
    assert not re.search(r"\s(-n|--numprocesses)\b", pytest_line)  # no xdist


def test_ci_run_starts_services_and_runs_make_test() -> None:
    script = CI_RUN.read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert calls_make_test(script)
    assert "pg_isready" in script and "redis-cli" in script
    assert os.access(CI_RUN, os.X_OK)


@pytest.mark.parametrize(
    "script", ["set -e\nmake lint\n", "# exec make test\nmake run\n", "echo make test\n"]
)
def test_make_test_detection_rejects_scripts_that_do_not_run_it(script: str) -> None:
    assert not calls_make_test(script)


# --- bin/check_services.py ------------------------------------------------------------------------
def test_check_services_explains_an_unreachable_postgres_without_leaking_the_password() -> None:
    cs = load_check_services()
    message = cs.check(cs.Service("PostgreSQL", "DATABASE_URL", "postgres://u:s3cr3t-pw@127.0.0.1:1/x"))
    assert message is not None
    assert "PostgreSQL is not reachable at 127.0.0.1:1 (connection refused)" in message
    assert "pg_ctlcluster --skip-systemctl-redirect" in message and "docker compose up -d db" in message
    assert "s3cr3t-pw" not in message


def test_check_services_explains_an_unreachable_redis() -> None:
    cs = load_check_services()
    message = cs.check(cs.Service("Redis", "REDIS_URL", "redis://127.0.0.1:1/0"))
    assert message is not None
    assert "Redis is not reachable at 127.0.0.1:1 (connection refused)" in message
    assert "redis-server --daemonize yes --bind 127.0.0.1 --port 1" in message


def test_check_services_reads_the_urls_from_the_environment() -> None:
    cs = load_check_services()
    services, notes = cs.services_from_env(
        {
            "DATABASE_URL": "postgres://a@db.example:5433/x",
            "REDIS_URL": "redis://r.example:6380/0",
            "CELERY_BROKER_URL": "filesystem://",
        }
    )
    assert [(s.kind, s.where) for s in services] == [
        ("PostgreSQL", "db.example:5433"),
        ("Redis", "r.example:6380"),
    ]
    assert any("CELERY_BROKER_URL" in note for note in notes)
