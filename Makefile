# Developer entry points. GNU make + bash. `make help` lists the targets.
#
#   make run     the whole platform on this machine: web server + Celery worker + Celery beat, on SQLite and a
#                filesystem broker (no PostgreSQL or Redis needed); Ctrl-C stops everything.
#   make test    lint + migrations check + the test suite, against PostgreSQL and Redis on 127.0.0.1.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
CELERY := $(VENV)/bin/celery
RUFF := $(VENV)/bin/ruff
PORT ?= 8000
PYTEST_ARGS ?=

# The demo logins created by `manage.py seed_demo` (annotate/batches/management/commands/seed_demo.py).
# README quotes these; keep the three in step.
DEMO_ADMIN_LOGIN := admin / admin-demo-pass
DEMO_ANNOTATORS := alice, bob, carol
DEMO_ANNOTATOR_PASSWORD := annotate-demo
DEMO_SAFETY_ANNOTATOR := carol

# `make test` runs against these unless the variables are already set (bin/check_services.py has the same
# defaults). `make run` never sets them: unset, the embedded SQLite + filesystem broker are used.
TEST_DATABASE_URL := postgres://postgres@127.0.0.1:5432/annotate
TEST_REDIS_URL := redis://127.0.0.1:6379/0
TEST_CELERY_BROKER_URL := redis://127.0.0.1:6379/1
TEST_ENV := DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" \
	REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" \
	CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_CELERY_BROKER_URL)}"

# Fails with a clear message unless the given interpreter is Python >= 3.11.
define require_python311
	@$(1) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: Python >= 3.11 is required, but '$(1)' is $$($(1) --version 2>&1 || echo 'not found')." >&2; \
	  echo "       Install Python 3.11+ and run e.g. 'make PYTHON=python3.11 $(MAKECMDGOALS)'" >&2; \
	  echo "       (if .venv was made with an older Python, remove it first: rm -rf .venv)." >&2; \
	  exit 1; }
endef

.PHONY: help venv venv-dev run test chromium lint fmt migrate seed bench clean

help:
	@echo "make run       web + Celery worker + beat on http://127.0.0.1:$(PORT)/ (PORT=...), demo data, Ctrl-C stops"
	@echo "make test      ruff, migrations check and pytest on PostgreSQL + Redis (PYTEST_ARGS='...')"
	@echo "make lint      ruff check + ruff format --check"
	@echo "make fmt       ruff format + ruff check --fix"
	@echo "make migrate   apply migrations        make seed    migrate + demo users and batches"
	@echo "make bench     every bench/*.py --quick"
	@echo "make venv      .venv with requirements.txt (make venv-dev: with requirements-dev.txt)"
	@echo "make clean     remove var/ (SQLite database, broker files, media) and caches; keeps .venv"

# --- Virtual environment ---------------------------------------------------------------------------
$(PY):
	$(call require_python311,$(PYTHON))
	$(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)." >&2; \
	  rm -rf $(VENV); exit 1; }

# Reinstalled only when requirements.txt is newer than the stamp.
$(VENV)/.req-stamp: requirements.txt | $(PY)
	$(call require_python311,$(PY))
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	@touch $@

# requirements-dev.txt includes requirements.txt, so it is refreshed when either changes.
$(VENV)/.req-dev-stamp: requirements-dev.txt $(VENV)/.req-stamp
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.req-stamp

venv-dev: $(VENV)/.req-dev-stamp

# --- Running it ------------------------------------------------------------------------------------
migrate: venv
	$(MANAGE) migrate --noinput

seed: migrate
	$(MANAGE) seed_demo

# DEBUG=true for run and everything it runs first (a DEBUG=false in the shell or in .env would otherwise
# demand a SECRET_KEY and collected static files), and unbuffered output for `make run | tee log`.
# DATABASE_URL, REDIS_URL and CELERY_BROKER_URL are passed through untouched: unset means the embedded
# SQLite database and filesystem broker under var/.
#
# The three processes start under `set -m`, so each leads its own process group: Ctrl-C (SIGINT to the
# terminal's foreground group) reaches make and this shell only, and the trap stops each group with
# SIGTERM (Celery: warm shutdown, unacknowledged messages go back to the queue), waits up to 15 s, then
# SIGKILLs what is left, runserver's autoreload child and Celery's pool included. Further signals are
# ignored while it cleans up (make forwards its own SIGTERM to this shell a second time). If one process
# exits on its own (e.g. the port is taken), the others are stopped too; that is polled, because
# `wait -n` misses a child that ended before it was called.
run: export DEBUG := true
run: export PYTHONUNBUFFERED := 1
run: venv
	@mkdir -p var
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo
	@groups=(); \
	stop() { \
	  trap '' INT TERM HUP; trap - EXIT; \
	  echo; echo "Stopping the web server, the Celery worker and beat ..."; \
	  for g in "$${groups[@]}"; do kill -TERM -- "-$$g" 2>/dev/null || true; done; \
	  for _ in $$(seq 150); do \
	    alive=0; \
	    for g in "$${groups[@]}"; do if kill -0 -- "-$$g" 2>/dev/null; then alive=1; fi; done; \
	    if [ "$$alive" = 0 ]; then break; fi; \
	    sleep 0.1; \
	  done; \
	  for g in "$${groups[@]}"; do kill -KILL -- "-$$g" 2>/dev/null || true; done; \
	  wait 2>/dev/null || true; \
	  echo "Stopped."; \
	}; \
	trap 'stop; exit 130' INT; \
	trap 'stop; exit 143' TERM HUP; \
	trap 'stop' EXIT; \
	set -m; \
	$(MANAGE) runserver 127.0.0.1:$(PORT) </dev/null & groups+=($$!); \
	$(CELERY) -A annotate worker -Q default,generation,exports -P threads -c 4 -l info </dev/null & groups+=($$!); \
	$(CELERY) -A annotate beat -l info -s var/celerybeat-schedule </dev/null & groups+=($$!); \
	set +m; \
	for _ in $$(seq 60); do \
	  if $(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
	       "http://127.0.0.1:$(PORT)/healthz" 2>/dev/null; then break; fi; \
	  if ! kill -0 "$${groups[0]}" 2>/dev/null; then break; fi; \
	  sleep 0.5; \
	done; \
	echo; \
	echo "================================================================================"; \
	echo " Annotation platform: http://127.0.0.1:$(PORT)/   (admin: http://127.0.0.1:$(PORT)/admin/)"; \
	echo " Admin:      $(DEMO_ADMIN_LOGIN)"; \
	echo " Annotators: $(DEMO_ANNOTATORS), password $(DEMO_ANNOTATOR_PASSWORD)"; \
	echo "             ($(DEMO_SAFETY_ANNOTATOR) is also qualified for the safety track)"; \
	echo " Web server, Celery worker (queues default, generation, exports) and beat are running."; \
	echo " Press Ctrl-C to stop them all."; \
	echo "================================================================================"; \
	all_alive() { for g in "$${groups[@]}"; do kill -0 "$$g" 2>/dev/null || return 1; done; }; \
	while all_alive; do sleep 0.5; done; \
	echo "One of the processes exited; stopping the others." >&2; \
	stop; \
	exit 1

# --- Checks ----------------------------------------------------------------------------------------
# Browser tests drive Debian's Chromium (see tests/conftest.py); Playwright's own download is not used.
chromium:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "warning: /usr/bin/chromium is missing and apt-get is not available; install Chromium so that" >&2; \
	  echo "         /usr/bin/chromium exists, or skip browser tests: make test PYTEST_ARGS='-m \"not browser\"'" >&2; \
	  exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=(); \
	elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); \
	else \
	  echo "warning: /usr/bin/chromium is missing. Install it as root with:" >&2; \
	  echo "         apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium" >&2; \
	  echo "         or skip browser tests: make test PYTEST_ARGS='-m \"not browser\"'" >&2; \
	  exit 0; fi; \
	echo "Installing Debian's chromium for the browser tests (takes a couple of minutes) ..."; \
	"$${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update; \
	"$${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

test: venv-dev chromium
	$(TEST_ENV) $(PY) bin/check_services.py
	$(RUFF) check .
	$(RUFF) format --check .
	$(TEST_ENV) $(MANAGE) makemigrations --check --dry-run
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: venv-dev
	$(RUFF) check .
	$(RUFF) format --check .

fmt: venv-dev
	$(RUFF) format .
	$(RUFF) check --fix .

# Every bench/*.py that is a script (has a __main__ guard); helper modules such as common.py are skipped.
bench: venv-dev
	@shopt -s nullglob; scripts=(); \
	for f in bench/*.py; do if grep -q '__name__ == "__main__"' "$$f"; then scripts+=("$$f"); fi; done; \
	if [ $${#scripts[@]} = 0 ]; then echo "No bench/*.py scripts yet."; exit 0; fi; \
	for script in "$${scripts[@]}"; do \
	  echo "==> $(PY) $$script --quick"; \
	  $(PY) "$$script" --quick; \
	done

clean:
	rm -rf var staticfiles test-artifacts .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o -type d -name __pycache__ -print0 \
	  | xargs -0 rm -rf
