"""Workbench fixtures: the loopback stub and real generation workers, for the live-prompt tests."""

from tests.endpoints.conftest import allow_loopback, stub  # noqa: F401 - shared fixtures
from tests.generation.conftest import start_worker, worker_env  # noqa: F401 - shared fixtures
