"""Engines and the one session helper. SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from learnloop.store import guard

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


#: the PostgreSQL driver: pg8000 (pure Python, BSD-3); psycopg is LGPL, which the install avoids
PG_DRIVER = "postgresql+pg8000://"
_PG_PREFIXES = ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql://", "postgres://")

#: SQLSTATE classes and codes of a database that is away or gave up on a statement, not of a
#: bad request: 08 connection exception, 57 operator intervention (57014 a statement timeout,
#: 57P01 an administrator's shutdown or terminated backend), 53 insufficient resources
_UNAVAILABLE_CLASSES = ("08", "57", "53")


def _normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` (and a URL naming psycopg) use the pg8000 driver."""
    for prefix in _PG_PREFIXES:
        if url.startswith(prefix):
            return PG_DRIVER + url.removeprefix(prefix)
    return url


def _server_fields(exc: BaseException) -> dict[str, str]:
    """The fields of a PostgreSQL error report (pg8000 passes the server's on as a dict)."""
    orig = getattr(exc, "orig", exc)
    for arg in getattr(orig, "args", ()):
        if isinstance(arg, dict) and isinstance(arg.get("C"), str):
            return {str(k): str(v) for k, v in arg.items()}
    return {}


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL error code of a driver error, or None."""
    return _server_fields(exc).get("C")


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error means "not now" (gone, restarting, a statement timeout), so the
    request may be tried again, rather than a bug or bad input."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or exc.statement is None):
        return True  # a connection that broke, or could not be made (no statement ran)
    fields = _server_fields(exc)
    if fields.get("S") in ("FATAL", "PANIC"):  # the server ended the session, e.g. a database
        return True  # refusing connections for a moment (55000) or shutting down
    code = fields.get("C")
    return code is not None and code.startswith(_UNAVAILABLE_CLASSES)


def _converted_query(original: Callable[..., tuple[str, Any]]) -> Callable[..., tuple[str, Any]]:
    """pg8000's ``convert_paramstyle`` with the rewritten statement remembered per statement.

    pg8000 rewrites every statement's ``%s`` markers to ``$1, $2...`` by scanning it character
    by character in Python, on every execution: about a sixth of the server's CPU per answer.
    For the positional styles SQLAlchemy uses the rewritten text depends on the statement
    alone (the values pass through unchanged), so it is computed once per distinct statement;
    ``named``/``pyformat`` (whose values are reordered) still go through pg8000 every time."""

    @lru_cache(maxsize=4096)
    def rewritten(style: str, query: str) -> str:
        return str(original(style, query, ())[0])

    def convert_paramstyle(style: str, query: str, args: Any) -> tuple[str, Any]:
        if style in ("format", "qmark", "numeric") and isinstance(query, str):
            return rewritten(style, query), args
        return original(style, query, args)

    convert_paramstyle.cached = True  # type: ignore[attr-defined]
    convert_paramstyle.original = original  # type: ignore[attr-defined]
    return convert_paramstyle


def _install_pg8000_speedups() -> None:
    """Once per process: the statement rewrite above, in both of pg8000's cursor modules."""
    import pg8000.dbapi
    import pg8000.legacy

    if getattr(pg8000.dbapi.convert_paramstyle, "cached", False):
        return
    fast = _converted_query(pg8000.dbapi.convert_paramstyle)
    pg8000.dbapi.convert_paramstyle = fast
    pg8000.legacy.convert_paramstyle = fast  # type: ignore[attr-defined]


def _timestamp_in(fallback: Callable[[str], Any]) -> Callable[[str], Any]:
    """A timestamp column's text as a datetime: ``datetime.fromisoformat`` reads PostgreSQL's
    ISO output (``2026-12-07 05:52:17.12+00``) to the same value as pg8000's ``strptime``, at
    a few hundredths of its cost; anything else (infinity, BC, years past 9999) goes to pg8000."""

    def parse(data: str) -> Any:
        try:
            return datetime.fromisoformat(data)
        except ValueError:
            return fallback(data)

    return parse


#: at most this many statements prepared per PostgreSQL connection; beyond it a new statement
#: runs unprepared (pg8000's own way), so a run of distinct statements holds bounded memory
PREPARED_PER_CONNECTION = 512

#: the statements worth preparing: the ones an application repeats (DDL, SET, COPY are not)
_PREPARABLE = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


def _prepared_statements(dbapi_conn: Any) -> None:
    """Each distinct statement prepared once per connection and executed by name after that.

    pg8000 runs every statement with parameters unnamed, in three round trips to the server
    (parse, describe, then bind and execute) and the server parses and plans it each time. A
    statement prepared on this connection before takes one round trip (bind and execute) and
    no parse; the practice loop repeats the same few dozen statements on every request. The
    prepared statements live as long as the connection. A schema change that alters a prepared
    statement's result columns makes PostgreSQL refuse it (SQLSTATE 0A000, "cached plan must
    not change result type"): that error counts as a disconnect (see ``_ping_when_idle``), so
    the pool replaces the connections made before it and the request answers 503."""
    from pg8000.converters import make_params

    prepared: dict[tuple[str, tuple[int, ...]], tuple[bytes, Any, Any]] = {}
    unnamed = dbapi_conn.execute_unnamed

    def execute_unnamed(statement: str, vals: Any = (), oids: Any = (), stream: Any = None) -> Any:
        if stream is not None:
            return unnamed(statement, vals=vals, oids=oids, stream=stream)
        key = (statement, tuple(oids or ()))
        found = prepared.get(key)
        if found is None:
            if len(prepared) >= PREPARED_PER_CONNECTION or not statement.lstrip()[:6].upper().startswith(
                _PREPARABLE
            ):
                return unnamed(statement, vals=vals, oids=oids)
            found = prepared[key] = dbapi_conn.prepare_statement(statement, list(oids or ()))
        name, columns, input_funcs = found
        params = make_params(dbapi_conn.py_types, vals)
        return dbapi_conn.execute_named(name, params, columns, input_funcs, statement)

    dbapi_conn.execute_unnamed = execute_unnamed


def _stale_prepared(exc: BaseException) -> bool:
    """PostgreSQL's refusal of a prepared statement whose result columns a schema change altered."""
    fields = _server_fields(exc)
    return fields.get("C") == "0A000" and "cached plan" in fields.get("M", "")


def _pg8000_connection(dbapi_conn: Any, _record: Any) -> None:
    from pg8000 import converters

    dbapi_conn.register_in_adapter(converters.TIMESTAMP, _timestamp_in(converters.timestamp_in))
    dbapi_conn.register_in_adapter(converters.TIMESTAMPTZ, _timestamp_in(converters.timestamptz_in))
    _prepared_statements(dbapi_conn)


#: PostgreSQL connections each pool keeps open once made, per process: at least the request
#: threads (``Settings.request_threads``, at most 32) plus the job worker's, so a busy process
#: reuses its connections. A connection beyond the kept ones (a pool's overflow) is closed when
#: it is given back, and the next burst opens a new one: a TCP and TLS handshake, a login and a
#: new server process each time (at 50 learners with 40 handler threads a process and 10 kept,
#: that churn was most of the CPU an answer cost)
POOL_SIZE = 40
POOL_OVERFLOW = 20

#: a pooled PostgreSQL connection idle this long is checked (``SELECT 1``) before it is used
PING_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use when it has been idle ``PING_IDLE_SECONDS`` or more;
    a dead one is replaced, so requests after a database restart or failover succeed.

    SQLAlchemy's ``pool_pre_ping`` checks on every checkout: a round trip per transaction, a
    tenth of the database work of the practice loop under load, where each connection comes
    back to the pool within milliseconds. A connection used that recently saw the database up
    then; one that breaks anyway (a restart within the second) fails its request with HTTP 503
    (nothing saved), and the pool then drops every connection older than the failure."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _back(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "handle_error")
    def _socket_error(context: Any) -> Any:
        # pg8000 lets a socket error through unwrapped when a connection the database dropped
        # is used (its BEGIN reads a reset socket): a disconnect, so the connection and the
        # pool's older ones are dropped, raised as the driver's own network errors are
        # (OperationalError: HTTP 503, not 500)
        if context.sqlalchemy_exception is None and isinstance(context.original_exception, OSError):
            context.is_disconnect = True
            return OperationalError(
                context.statement,
                context.parameters,
                context.original_exception,
                connection_invalidated=True,
            )
        if _stale_prepared(context.original_exception):
            # a statement prepared on this connection before a schema change altered its
            # result columns (``_prepared_statements``): the connections made before the
            # change are dropped and the request answers 503, to be tried again
            context.is_disconnect = True
        return None

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is not None and time.monotonic() - since < PING_IDLE_SECONDS:
            return
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("SELECT 1")
        except Exception as exc:  # any failure of the ping: a new connection instead
            raise DisconnectionError(str(exc)) from exc
        finally:
            with suppress(Exception):  # the cursor of a dead connection
                cursor.close()


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    url = _normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    else:
        engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        _ping_when_idle(engine)
        if url.startswith(PG_DRIVER):
            _install_pg8000_speedups()
            event.listen(engine, "connect", _pg8000_connection)
    guard.install(engine)
    return engine


@lru_cache(maxsize=8)
def _autocommit_engine(url: str) -> Engine | None:
    """PostgreSQL: an engine of its own whose connections commit each statement as it runs (a
    small pool beside the main one); SQLite: None (a transaction there costs no round trip)."""
    url = _normalise_url(url)
    if url.startswith("sqlite"):
        return None
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    _ping_when_idle(engine)
    if url.startswith(PG_DRIVER):
        _install_pg8000_speedups()
        event.listen(engine, "connect", _pg8000_connection)
    guard.install(engine)
    # disposed with the main engine (a test dropping its database disposes that one)
    event.listen(get_engine(url), "engine_disposed", lambda _conn: engine.dispose())
    return engine


@contextmanager
def autocommit_scope(url: str) -> Iterator[Connection]:
    """A connection for work that is one statement at a time, each complete on its own (the
    login lookup on every request: a read, and at most one write): on PostgreSQL without
    ``BEGIN`` and ``COMMIT``, two round trips fewer than :func:`session_scope`; on SQLite one
    transaction, committed when the block succeeds."""
    engine = _autocommit_engine(url)
    if engine is None:
        with get_engine(url).begin() as conn:
            yield conn
        return
    with engine.connect() as conn:  # closing it rolls back nothing: no transaction is open
        yield conn


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back everything if it raises."""
    session = _session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", _normalise_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database schema to the newest migration (creates it when empty)."""
    engine = get_engine(url)
    with engine.begin() as connection:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")


def has_schema(url: str) -> bool:
    return inspect(get_engine(url)).has_table("users")
