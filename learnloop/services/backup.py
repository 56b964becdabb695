"""Backup and restore: a consistent, versioned, portable dump of every table.

A dump is gzip-compressed JSON Lines, one JSON document per line:

- line 1, the header: ``{"format": "learnloop-backup", "format_version": 1, "schema_revisions":
  [...], "source_backend": ..., "created_at": ...}`` (the schema's Alembic revisions: one per
  branch head);
- per table, in foreign-key order: ``{"table": name, "columns": [[name, type], ...]}`` followed by
  one line per row, ``{"row": [value, ...]}``, values in the column order of the table line;
- last, the trailer: ``{"end": {"rows": {table: count, ...}}}``; a dump without it is truncated.

Types are the portable ones (``int``, ``float``, ``str``, ``bool``, ``json``, ``datetime``, ``date``,
``bytes``): a date-time is ISO 8601 in UTC with its offset, bytes are base64. So a dump taken on
SQLite restores into PostgreSQL and the other way round.

The dump is read in one read-only snapshot (``REPEATABLE READ`` on PostgreSQL, one read
transaction on SQLite's write-ahead log), so answers written meanwhile are either wholly in it or
not at all. A restore runs in one transaction: it creates the schema at the dump's revisions, loads
every row, resets PostgreSQL's id sequences, then upgrades the schema to this version's newest
revision; on any problem nothing is left behind, tables included.
It refuses a database that holds any row, and a dump of a newer schema or format.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from alembic import command
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, MetaData, Table, func, inspect, select, text
from sqlalchemy import types as sqltypes

from learnloop.errors import LearnloopError
from learnloop.i18n import _
from learnloop.store.db import alembic_config, get_engine

FORMAT = "learnloop-backup"
FORMAT_VERSION = 1
VERSION_TABLE = "alembic_version"
#: tables of the job runner an earlier version used on PostgreSQL (procrastinate's, dropped by
#: migration 0028): not data; the ``jobs`` table is the queue and the jobs' record, and its
#: waiting jobs run after a restore like any others (``jobs/runners.py``)
RUNNER_PREFIX = "procrastinate_"


def _is_data(name: str) -> bool:
    return name != VERSION_TABLE and not name.startswith(RUNNER_PREFIX)


BATCH = 1000


class BackupError(LearnloopError):
    """A dump that cannot be written or restored (CLI exit 2)."""


@dataclass
class BackupSummary:
    path: Path
    schema_revisions: list[str]
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


# -- values ------------------------------------------------------------------------------------


def _kind(column_type: sqltypes.TypeEngine[Any]) -> str:
    """The portable type of a column, from its (reflected) SQL type."""
    checks: list[tuple[type[Any], str]] = [
        (sqltypes.JSON, "json"),
        (sqltypes.DateTime, "datetime"),
        (sqltypes.Date, "date"),
        (sqltypes.Boolean, "bool"),
        (sqltypes.Integer, "int"),
        (sqltypes.Float, "float"),
        (sqltypes.Numeric, "float"),
        (sqltypes.LargeBinary, "bytes"),
    ]
    for cls, kind in checks:
        if isinstance(column_type, cls):
            return kind
    return "str"


def _dump_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite keeps UTC, naive
        return moment.astimezone(UTC).isoformat()
    if kind == "date":
        return value.isoformat()
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "float":
        value = float(value)
        if not math.isfinite(value):  # JSON has no NaN or infinity: a string keeps them exact
            return {"float": repr(value)}
        return value
    if kind == "bool":
        return bool(value)
    return value


def _load_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "float":
        return float(value["float"]) if isinstance(value, dict) else float(value)
    if kind == "bool":
        return bool(value)
    return value


# -- schema ------------------------------------------------------------------------------------


def _revisions(conn: Connection) -> list[str]:
    """The schema's Alembic revisions (one per branch head), or none where there is no schema."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return []
    return sorted(str(r[0]) for r in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")))


def _data_tables(conn: Connection) -> list[Table]:
    """Every table but the schema version's, parents before children."""
    metadata = MetaData()
    metadata.reflect(bind=conn)
    return [t for t in metadata.sorted_tables if _is_data(t.name)]


def _script(url: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(url))


# -- backup ------------------------------------------------------------------------------------


def _snapshot(conn: Connection) -> None:
    """Start one read snapshot for every table read on ``conn``."""
    if conn.dialect.name == "sqlite":
        # pysqlite begins no transaction for a SELECT: begin one, so that every table is read
        # from the same state of the write-ahead log
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def _line(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n").encode(
        "utf-8"
    )


def backup(url: str, path: Path) -> BackupSummary:
    """Write every table of the database at ``url`` to ``path`` (replaced only when complete)."""
    engine = get_engine(url)
    partial = path.with_name(path.name + ".partial")
    with engine.connect() as conn:
        _snapshot(conn)
        revisions = _revisions(conn)
        if not revisions:
            raise BackupError(
                _("The database at %(url)s has no Learnloop schema: nothing to back up.")
                % {"url": engine.url.render_as_string(hide_password=True)}
            )
        summary = BackupSummary(path=path, schema_revisions=revisions)
        with gzip.open(partial, "wb") as out:
            out.write(
                _line(
                    {
                        "format": FORMAT,
                        "format_version": FORMAT_VERSION,
                        "schema_revisions": revisions,
                        "source_backend": conn.dialect.name,
                        "created_at": datetime.now(UTC).isoformat(),
                    }
                )
            )
            for table in _data_tables(conn):
                columns = list(table.columns)
                kinds = [_kind(c.type) for c in columns]
                out.write(
                    _line(
                        {
                            "table": table.name,
                            "columns": [[c.name, k] for c, k in zip(columns, kinds, strict=True)],
                        }
                    )
                )
                order = list(table.primary_key.columns) or columns
                count = 0
                result = conn.execution_options(yield_per=BATCH).execute(select(*columns).order_by(*order))
                for row in result:
                    out.write(_line({"row": [_dump_value(k, v) for k, v in zip(kinds, row, strict=True)]}))
                    count += 1
                summary.rows[table.name] = count
            out.write(_line({"end": {"rows": summary.rows}}))
        conn.rollback()
    partial.replace(path)
    return summary


# -- restore -----------------------------------------------------------------------------------


@dataclass
class _Reader:
    """The lines of a dump, with the line number of each for error messages."""

    path: Path
    stream: BinaryIO
    number: int = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for raw in self.stream:
                self.number += 1
                try:
                    document = json.loads(raw)
                except ValueError as exc:
                    raise self.error(_("not a JSON line (%(problem)s)") % {"problem": exc}) from None
                if not isinstance(document, dict):
                    raise self.error(_("expected a JSON object"))
                yield document
        except (OSError, EOFError) as exc:  # not gzip, or cut off inside the compressed stream
            raise self.error(
                _("the file cannot be read as a gzip dump (%(problem)s)") % {"problem": exc}
            ) from None

    def error(self, message: str) -> BackupError:
        return BackupError(f"{self.path}:{self.number}: {message}")


def _read_header(reader: _Reader, lines: Iterator[dict[str, Any]], known: ScriptDirectory) -> dict[str, Any]:
    header = next(lines, None)
    if header is None:
        raise reader.error(_("the file is empty"))
    if header.get("format") != FORMAT:
        raise reader.error(_("not a Learnloop backup (no %(format)s header)") % {"format": FORMAT})
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise reader.error(
            _(
                "the dump has format version %(found)s, newer than this Learnloop reads (%(known)d); "
                "restore it with a newer Learnloop"
            )
            % {"found": version, "known": FORMAT_VERSION}
        )
    revisions = header.get("schema_revisions")
    if not isinstance(revisions, list) or not revisions or not all(isinstance(r, str) for r in revisions):
        raise reader.error(_("the header has no schema revisions"))
    for revision in revisions:
        try:
            known_revision = known.get_revision(revision) is not None
        except CommandError:
            known_revision = False
        if not known_revision:
            raise reader.error(
                _(
                    "the dump is of schema revision %(revision)s, which this Learnloop does not know "
                    "(a newer schema): restore it with the Learnloop version that wrote it, or a newer one"
                )
                % {"revision": revision}
            )
    return header


def _check_empty(conn: Connection) -> None:
    for table in _data_tables(conn):
        if conn.execute(select(func.count()).select_from(table)).scalar_one():
            raise BackupError(
                _(
                    "The database is not empty (table %(table)s holds rows): restore only into a new, "
                    "empty database."
                )
                % {"table": table.name}
            )


def _prepare_schema(conn: Connection, url: str, revisions: list[str], script: ScriptDirectory) -> None:
    """Bring an empty database's schema to ``revisions`` (from nothing, or from older ones)."""
    current = _revisions(conn)
    ancestors = {r.revision for r in script.iterate_revisions(tuple(revisions), "base")}
    newer = [r for r in current if r not in ancestors]
    if newer:
        raise BackupError(
            _(
                "The database's schema (revision %(current)s) is newer than the dump's (%(revision)s): "
                "restore into a new database without a schema."
            )
            % {"current": ", ".join(newer), "revision": ", ".join(revisions)}
        )
    for revision in revisions:
        _upgrade(conn, url, revision)


def _upgrade(conn: Connection, url: str, revision: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


@dataclass
class _TableLoad:
    table: Table
    columns: list[str]
    kinds: list[str]
    #: columns whose foreign key points to this table or one not loaded yet: set afterwards
    deferred: list[str]
    count: int = 0


def _start_table(
    reader: _Reader, document: dict[str, Any], tables: dict[str, Table], loaded: set[str]
) -> _TableLoad:
    name = document.get("table")
    if name not in tables:
        raise reader.error(_("table %(table)s does not exist in the schema") % {"table": name})
    table = tables[name]
    pairs = document.get("columns")
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise reader.error(_("a table line needs its columns as [name, type] pairs"))
    columns = [str(p[0]) for p in pairs]
    unknown = [c for c in columns if c not in table.columns]
    if unknown:
        raise reader.error(
            _("columns %(columns)s are not in table %(table)s")
            % {"columns": ", ".join(unknown), "table": name}
        )
    deferred = [
        c
        for c in columns
        if table.columns[c].nullable
        and any(
            fk.column.table.name == name or fk.column.table.name not in loaded
            for fk in table.columns[c].foreign_keys
        )
    ]
    return _TableLoad(table=table, columns=columns, kinds=[str(p[1]) for p in pairs], deferred=deferred)


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """After explicit ids, PostgreSQL's sequences must continue after the largest one."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, sqltypes.Integer):
            continue
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": keys[0].name},
        ).scalar()
        if sequence:
            conn.execute(
                text(
                    f'SELECT setval(:sequence, COALESCE((SELECT MAX("{keys[0].name}") FROM "{table.name}"), 1), '
                    f'(SELECT MAX("{keys[0].name}") FROM "{table.name}") IS NOT NULL)'
                ),
                {"sequence": sequence},
            )


def restore(url: str, path: Path) -> BackupSummary:
    """Load the dump at ``path`` into the empty database at ``url``, then upgrade its schema."""
    if not path.is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    script = _script(url)
    engine = get_engine(url)
    with gzip.open(path, "rb") as stream, engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite would run the schema's DDL outside any transaction: one BEGIN makes the
            # whole restore, tables included, one transaction
            conn.exec_driver_sql("BEGIN")
        reader = _Reader(path=path, stream=stream)  # type: ignore[arg-type]
        lines = iter(reader)
        header = _read_header(reader, lines, script)
        revisions = header["schema_revisions"]
        _check_empty(conn)
        _prepare_schema(conn, url, revisions, script)
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        metadata = MetaData()
        metadata.reflect(bind=conn)
        tables = {t.name: t for t in metadata.sorted_tables if _is_data(t.name)}
        summary = BackupSummary(path=path, schema_revisions=revisions)
        loaded: set[str] = set()
        current: _TableLoad | None = None
        batch: list[dict[str, Any]] = []
        later: list[tuple[Table, dict[str, Any], dict[str, Any]]] = []
        end: dict[str, Any] | None = None

        def flush() -> None:
            if current is not None and batch:
                conn.execute(current.table.insert(), batch)
                batch.clear()

        for document in lines:
            if end is not None:
                raise reader.error(_("lines after the end of the dump"))
            if "row" in document:
                if current is None:
                    raise reader.error(_("a row before any table line"))
                values = document["row"]
                if not isinstance(values, list) or len(values) != len(current.columns):
                    raise reader.error(_("a row needs %(count)d values") % {"count": len(current.columns)})
                try:
                    row = {
                        c: _load_value(k, v)
                        for c, k, v in zip(current.columns, current.kinds, values, strict=True)
                    }
                except (TypeError, ValueError, KeyError) as exc:
                    raise reader.error(_("a value cannot be read (%(problem)s)") % {"problem": exc}) from None
                if current.deferred:
                    keys = {k.name: row[k.name] for k in current.table.primary_key.columns}
                    links = {c: row[c] for c in current.deferred if row[c] is not None}
                    if links and keys:
                        later.append((current.table, keys, links))
                        row.update(dict.fromkeys(links))
                batch.append(row)
                current.count += 1
                if len(batch) >= BATCH:
                    flush()
            elif "table" in document:
                flush()
                if current is not None:
                    summary.rows[current.table.name] = current.count
                    loaded.add(current.table.name)
                if document.get("table") in summary.rows:
                    raise reader.error(_("table %(table)s appears twice") % {"table": document.get("table")})
                current = _start_table(reader, document, tables, loaded)
            elif "end" in document:
                flush()
                if current is not None:
                    summary.rows[current.table.name] = current.count
                end = document["end"] if isinstance(document["end"], dict) else {}
            else:
                raise reader.error(_("a line that is neither a table, a row nor the end"))
        if end is None:
            raise reader.error(_("the dump is truncated (no end line): nothing was restored"))
        expected = end.get("rows", {})
        if expected != summary.rows:
            raise reader.error(
                _("the dump's row counts do not match its rows (%(expected)s, read %(read)s)")
                % {"expected": expected, "read": summary.rows}
            )
        for table, keys, links in later:
            where = [table.columns[k] == v for k, v in keys.items()]
            conn.execute(table.update().where(*where).values(**links))
        _reset_sequences(conn, list(tables.values()))
        _upgrade(conn, url, "heads")
    return summary
