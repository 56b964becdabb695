"""PostgreSQL through pg8000: the URLs that select it, and which of its errors mean "the
database is away for a moment" (HTTP 503, nothing saved, try again) rather than a bug.

The bad-input cases (NUL in text, ids of 2^31 and more) are refused before the driver by
``store/guard.py``, on every route: tests/test_bad_input_server.py and tests/api/test_fuzz.py run
them against PostgreSQL through this driver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

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


def test_the_speedups_read_and_bind_as_pg8000_does(pg_url: str) -> None:
    """store/db.py remembers pg8000's rewrite of each statement and reads timestamps with
    ``datetime.fromisoformat``: the same statements, values and datetimes as pg8000's own code,
    including the forms fromisoformat does not read (infinity, BC, a half-hour offset)."""
    import pg8000.dbapi
    from pg8000 import converters

    from learnloop.store.db import get_engine

    engine = get_engine(pg_url)  # installs the rewrite cache and the timestamp readers
    fast = pg8000.dbapi.convert_paramstyle
    assert getattr(fast, "cached", False)
    original = fast.original  # type: ignore[attr-defined]
    for statement in [
        "SELECT %s::INTEGER, '%%s', '100%%' || %s",
        "SELECT 'it''s %%', \"odd\"\"name\" FROM t WHERE a = %s -- %s in a comment\n AND b = %s",
        "SELECT $$ %% $$, E'\\'%%', %s",
    ]:
        for bound in [(1, "x", 3), (2, "y", 4)]:
            assert fast("format", statement, bound) == original("format", statement, bound)
    named = ("SELECT :b, :a", {"a": 1, "b": 2})
    assert fast("named", *named) == original("named", *named) == ("SELECT $1, $2", (2, 1))
    with engine.connect() as conn:
        for args in [(1, "a"), (2, "b%")]:
            got = conn.exec_driver_sql("SELECT %s::INTEGER, 7 %% 4, '%%' || %s", args).one()
            assert tuple(got) == (args[0], 3, "%%" + args[1])  # pg8000 leaves quoted text as is
        conn.exec_driver_sql("SET TIME ZONE 'Asia/Kolkata'")
        values = [
            "2026-12-07 05:52:17.123456+00",
            "2026-12-07 05:52:17.12+00",
            "2026-12-07 05:52:17+00",
            "0999-01-01 00:00:00+00",
            "infinity",
            "-infinity",
            "0044-03-15 12:00:00+00 BC",
        ]
        for value in values:
            text_form, tz, plain = conn.exec_driver_sql(
                "SELECT (%s::timestamptz)::text, %s::timestamptz, (%s::timestamptz)::timestamp",
                (value, value, value),
            ).one()
            plain_text = conn.exec_driver_sql(
                "SELECT ((%s::timestamptz)::timestamp)::text", (value,)
            ).scalar()
            for ours, theirs in [
                (tz, converters.timestamptz_in(text_form)),
                (plain, converters.timestamp_in(plain_text)),
            ]:
                # the same value; where pg8000 gives the text back (an offset in seconds before
                # 1901, local mean time), the datetime it names
                assert ours == theirs or (isinstance(theirs, str) and ours == datetime.fromisoformat(theirs))


def _terminate(url: str, pid: int) -> None:
    admin = create_engine(_normalise_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    finally:
        admin.dispose()


def test_a_pooled_connection_idle_for_a_while_is_checked_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection idle in the pool for ``PING_IDLE_SECONDS`` is checked before use: one whose
    backend went away (a restart, a failover) is replaced and the request succeeds. One back in
    the pool more recently is handed out unchecked (no round trip per transaction): when it is
    dead after all, its request fails as unavailable (HTTP 503, nothing saved) and the pool
    drops it, so the next one succeeds."""
    import time

    from learnloop.store import db

    engine = db.get_engine(pg_url)
    engine.dispose()
    pid = "SELECT pg_backend_pid()"
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 60.0)
    with engine.connect() as conn:
        first = conn.execute(text(pid)).scalar()
    _terminate(pg_url, int(first))
    with pytest.raises(DBAPIError) as dead, engine.connect() as conn:  # unchecked: it fails
        conn.execute(text(pid))
    assert is_unavailable(dead.value)
    with engine.connect() as conn:
        second = conn.execute(text(pid)).scalar()
    assert second != first

    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.05)
    _terminate(pg_url, int(second))
    time.sleep(0.1)
    with engine.connect() as conn:  # idle past the window: checked, found dead, replaced
        third = conn.execute(text(pid)).scalar()
    assert third not in (first, second)
    engine.dispose()


def test_statements_are_prepared_once_per_connection_and_a_stale_one_is_unavailable(pg_url: str) -> None:
    """store/db.py prepares each distinct statement once per pg8000 connection and runs it by
    name after that (one round trip, no parse): the same rows as unprepared, for reads and
    writes, with NULLs and no rows. A schema change that alters a prepared statement's result
    columns makes PostgreSQL refuse it: that request fails as unavailable (HTTP 503, nothing
    saved), the pool drops the connection, and the statement runs again on a fresh one."""
    from learnloop.store import db

    engine = db.get_engine(pg_url)
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE prep_probe (id INTEGER PRIMARY KEY, note TEXT)"))
    select = text("SELECT id, note FROM prep_probe WHERE id >= :low ORDER BY id")
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        before = set(raw._statement_nums)
        for k in range(3):
            conn.execute(
                text("INSERT INTO prep_probe (id, note) VALUES (:id, :note)"),
                {"id": k, "note": None if k == 1 else f"n{k}"},
            )
        assert conn.execute(select, {"low": 5}).all() == []
        assert [tuple(r) for r in conn.execute(select, {"low": 1})] == [(1, None), (2, "n2")]
        assert [tuple(r) for r in conn.execute(select, {"low": 0})] == [(0, "n0"), (1, None), (2, "n2")]
        # one prepared statement each for the INSERT and the SELECT, however often they ran
        assert len(set(raw._statement_nums) - before) == 2
        assert (
            conn.execute(text("UPDATE prep_probe SET note = :n WHERE id = :id"), {"n": "x", "id": 1}).rowcount
            == 1
        )
    with engine.connect() as conn:
        conn.execute(select, {"low": 0}).all()  # prepared on the pooled connection
    with db.get_engine(pg_url).begin() as conn:  # the same pooled connection alters the table
        conn.execute(text("ALTER TABLE prep_probe ALTER COLUMN note TYPE INTEGER USING NULL"))
    with pytest.raises(DBAPIError) as stale, engine.connect() as conn:
        conn.execute(select, {"low": 0}).all()
    assert sqlstate(stale.value) == "0A000" and is_unavailable(stale.value)
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(select, {"low": 0})] == [(0, None), (1, None), (2, None)]
    engine.dispose()
