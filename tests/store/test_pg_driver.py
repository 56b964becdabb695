"""PostgreSQL through pg8000: the URLs that select it, and which of its errors mean "the
database is away for a moment" (HTTP 503, nothing saved, try again) rather than a bug.

The bad-input cases (NUL in text, ids of 2^31 and more) are refused before the driver by
``store/guard.py``, on every route: tests/test_bad_input_server.py and tests/api/test_fuzz.py run
them against PostgreSQL through this driver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from learnloop.store.db import _normalise_url, is_unavailable, sqlstate
from tests.conftest import POSTGRES_URL, _postgres_database, need


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://u:p@h:5/db",
        "postgres://u:p@h:5/db",
        "postgresql+psycopg://u:p@h:5/db",
        "postgresql+psycopg2://u:p@h:5/db",
        "postgresql+pg8000://u:p@h:5/db",
    ],
)
def test_every_postgresql_url_uses_pg8000(given: str) -> None:
    assert _normalise_url(given) == "postgresql+pg8000://u:p@h:5/db"
    assert _normalise_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not POSTGRES_URL:
        need("no PostgreSQL server (set LEARNLOOP_TEST_POSTGRES_URL)")
    yield from _postgres_database()


def _error(url: str, sql: str, **params: object) -> DBAPIError:
    engine = create_engine(_normalise_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(text("SET statement_timeout = 200"))
            conn.execute(text(sql), params)
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{sql} did not fail")


def test_a_statement_timeout_is_unavailable_and_a_bad_statement_is_not(pg_url: str) -> None:
    timeout = _error(pg_url, "SELECT pg_sleep(5)")
    assert sqlstate(timeout) == "57014" and is_unavailable(timeout)
    for sql, params in [
        ("SELECT * FROM no_such_table", {}),
        ("SELECT CAST(:v AS integer)", {"v": "x"}),
        ("SELECT 1 / 0", {}),
    ]:
        bug = _error(pg_url, sql, **params)
        assert sqlstate(bug) and not is_unavailable(bug), (sql, bug)


def test_refused_and_closed_databases_are_unavailable(pg_url: str) -> None:
    base, name = pg_url.rsplit("/", 1)
    admin = create_engine(_normalise_url(f"{base}/postgres"), isolation_level="AUTOCOMMIT")
    refused = create_engine(_normalise_url("postgresql://nobody@127.0.0.1:1/x"))
    with pytest.raises(DBAPIError) as nobody:
        refused.connect()
    assert is_unavailable(nobody.value)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        closed = create_engine(_normalise_url(pg_url))
        with pytest.raises(DBAPIError) as not_now:
            closed.connect()
        closed.dispose()
        assert sqlstate(not_now.value) == "55000" and is_unavailable(not_now.value)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
