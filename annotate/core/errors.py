"""Domain errors: raised by services, turned into a 400/409 (API) or a message (pages) at the edge."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses, with a machine-readable code and the field it concerns."""

    status_code = 400

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    def as_dict(self) -> dict[str, object]:
        fields = {self.field: [self.message]} if self.field else {}
        return {"error": {"code": self.code, "message": self.message, "fields": fields}}


class ConflictError(DomainError):
    """The request is valid but the state does not allow it now (an item already full, a job running)."""

    status_code = 409


class NotFound(DomainError):
    """The object does not exist, or is not the caller's to see (HTTP 404, never 403: no existence leak)."""

    status_code = 404

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message, code="not_found")
