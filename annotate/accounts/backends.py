"""Authentication backend: Django's ModelBackend, with the per-request user lookup in plain SQL.

Every signed-in request loads its user; through the ORM that lookup costs about a millisecond of CPU
to build and compile (see annotate/core/rawsql.py), as much as the rest of a small page. Sign-in,
permissions and the rules on inactive users are ModelBackend's, unchanged.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from annotate.accounts.models import User
from annotate.core import rawsql


class AccountBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        u = rawsql.columns(User, "u")
        row = rawsql.fetchone(f"SELECT {u.sql} FROM {User._meta.db_table} u WHERE u.id = %s", [pk])
        if row is None:
            return None
        user = u.load(row)
        return user if self.user_can_authenticate(user) else None
