"""The judgment INSERT of the submit path, in plain SQL (see annotate/core/rawsql.py for why)."""

from __future__ import annotations

from django.db import connection

from annotate.core import rawsql
from annotate.judgments.models import Judgment

J = Judgment._meta.db_table
# Every concrete column but the id, in model order; values are prepared by each field for the database
# in use (JSON, datetimes), as the ORM's INSERT would.
_FIELDS = [f for f in Judgment._meta.concrete_fields if not f.primary_key]
_INSERT = (
    f"INSERT INTO {J} ({', '.join(connection.ops.quote_name(f.column) for f in _FIELDS)}) "
    f"VALUES ({', '.join(['%s'] * len(_FIELDS))}) RETURNING id"
)


def judgment_insert(judgment: Judgment) -> Judgment:
    """Insert an unsaved judgment whose fields are all set (created_at included); sets its id."""
    params = [f.get_db_prep_save(getattr(judgment, f.attname), connection) for f in _FIELDS]
    row = rawsql.fetchone(_INSERT, params)
    assert row is not None
    judgment.pk = row[0]
    judgment._state.adding = False
    judgment._state.db = connection.alias
    return judgment
