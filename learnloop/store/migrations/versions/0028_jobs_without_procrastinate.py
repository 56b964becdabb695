"""jobs without procrastinate: drop its schema on PostgreSQL, index the claim of due jobs

The job queue on PostgreSQL is the ``jobs`` table itself (``learnloop/jobs/runners.py``: a claim
with ``FOR UPDATE SKIP LOCKED``, woken by ``LISTEN``/``NOTIFY``). Databases made by an earlier
version hold procrastinate's schema (tables, functions, types, all named ``procrastinate_*``); it
is dropped here. Jobs waiting there were only hand-overs of ``jobs`` rows, which stay and run.

Revision ID: 0028_jobs_without_procrastinate
Revises: 0001_initial_schema
"""

from alembic import op

revision = "0028_jobs_without_procrastinate"
down_revision = "0001"
branch_labels = None
depends_on = "0014_jobs"

_DROP_PROCRASTINATE = """
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
        WHERE tablename LIKE 'procrastinate\\_%' AND schemaname = current_schema()
    LOOP
        EXECUTE 'DROP TABLE IF EXISTS ' || name || ' CASCADE';
    END LOOP;
    FOR name IN
        SELECT p.oid::regprocedure::text FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.proname LIKE 'procrastinate\\_%' AND n.nspname = current_schema()
    LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || name || ' CASCADE';
    END LOOP;
    FOR name IN
        SELECT format('%I.%I', n.nspname, t.typname) FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname LIKE 'procrastinate\\_%' AND t.typtype IN ('e', 'c', 'd')
          AND n.nspname = current_schema()
    LOOP
        EXECUTE 'DROP TYPE IF EXISTS ' || name || ' CASCADE';
    END LOOP;
END
$$
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(_DROP_PROCRASTINATE)
        # the runner's claim: the oldest due job among the waiting ones
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_jobs_waiting_run_at ON jobs (run_at, id) "
            "WHERE state IN ('queued', 'retry')"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_jobs_waiting_run_at")
