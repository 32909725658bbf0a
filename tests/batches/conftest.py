"""Batch fixtures: the loopback stub (from tests/endpoints) for the live-prompt tests' generations."""

from tests.endpoints.conftest import allow_loopback, stub  # noqa: F401 - fixtures shared with the endpoint tests
