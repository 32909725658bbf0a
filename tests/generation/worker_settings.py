"""Settings of the test workers: the project's own, plus database connections kept across tasks.

Without CELERY_DB_REUSE_MAX, Celery's Django fixup closes the database connection around every task, so
every generation opens a new PostgreSQL session (see bench/generation_throughput.py --db-reuse-max);
on these shared 2-core machines that alone adds seconds to a 400-response test.
"""

from annotate.settings import *  # noqa: F403

CELERY_DB_REUSE_MAX = 100
