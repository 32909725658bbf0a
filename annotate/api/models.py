"""Personal API tokens (stored hashed) and the idempotency records of API writes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class ApiToken(AbstractAuthToken):
    """A personal API token (knox's model plus a public id and a name).

    Only the SHA-512 digest of the token is stored, and `token_key`, its first 15 characters, by which
    the authenticator finds candidate rows and the user recognises the token in a list. The token itself
    exists only in the response that created it.
    """

    # knox makes the digest the primary key; a public id keeps the digest out of every URL and listing.
    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'vendor tool'.")

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["user", "created"], name="apitoken_user_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…) of {self.user_id}"


class IdempotencyRecord(models.Model):
    """The first response to a write sent with an `Idempotency-Key` header, kept to replay it.

    Written in the same transaction as the write itself, so a record exists exactly when the write
    committed. The unique (user, key) row is inserted before the write runs: a concurrent request with
    the same key blocks on that row's index entry until the first commits, then replays its response.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2048)
    request_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    # The rendered JSON exactly as the client got it (text, not jsonb: a replay must match byte for byte).
    response_body = models.TextField(blank=True)
    # The response held a secret (a new API token): it was left out of response_body, so a replay cannot
    # give it again and is answered with 409 instead.
    secret_withheld = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key"),
            models.CheckConstraint(
                condition=Q(status_code__gte=100) & Q(status_code__lte=599), name="idempotency_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}] -> {self.status_code}"
