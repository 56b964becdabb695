"""`learnloop backup` / `learnloop restore`: a faithful round trip on and across both backends,
the rebuild-equals-live check after restore, and clear refusals (exit 2) of what cannot be restored.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, update
from typer.testing import CliRunner

from learnloop.cli import app
from learnloop.config import get_settings
from learnloop.services.context import AppContext
from learnloop.services.demo import create_demo
from learnloop.store.db import get_engine
from learnloop.store.models import User
from tests.conftest import MINI_PACK, POSTGRES_URL, _make_ctx, _postgres_database, answer_payload, need

PASSWORD = "correct horse battery"


def cli(url: str, *args: str) -> tuple[int, str]:
    """Run the command line in this process on the database at ``url``."""
    get_settings.cache_clear()  # the settings are read from the environment once per process
    try:
        result = CliRunner().invoke(
            app, list(args), env={"LEARNLOOP_DATABASE_URL": url, "LEARNLOOP_DEFAULT_PACK": str(MINI_PACK)}
        )
    finally:
        get_settings.cache_clear()
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _fill(ctx: AppContext) -> dict[str, str]:
    """Learners with histories (the demo), a learner who answered through the API and holds a
    pending item, a tutor conversation, and a manager link to a user created after the managed one."""
    from learnloop.server import create_app

    create_demo(ctx, learners=6, seed=3)
    with TestClient(create_app(ctx)) as client:
        r = client.post(
            "/api/v1/auth/signup", json={"email": "ada@example.org", "name": "Ada", "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        client.cookies.clear()
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        assert client.post("/api/v1/enrolment", json={"role_id": "builder"}, headers=h).status_code == 200
        for right in (True, False, True):
            shown = client.get("/api/v1/practice/next", headers=h).json()
            with ctx.session() as session:
                item = ctx.active_pack(session).items[shown["item"]["id"]]
            body = {
                "item_id": item.id,
                "answer": answer_payload(item, right),
                "presentation_id": shown["presentation_id"],
            }
            assert client.post("/api/v1/practice/answer", json=body, headers=h).status_code == 200
        pending = client.get("/api/v1/practice/next", headers=h).json()
        assert (
            client.post("/api/v1/tutor/ask", json={"question": "What is a token?"}, headers=h).status_code
            == 200
        )
    with ctx.session() as session:
        ids = session.execute(select(User.id).order_by(User.id)).scalars().all()
        first, last = ids[0], ids[-1]
        session.execute(update(User).where(User.id == first).values(manager_id=last))
    return {"pending_item": pending["item"]["id"]}


def _rows(path: Path) -> list[str]:
    """The table and row lines of a dump (the header names the source and the time)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()[1:]


@pytest.fixture
def fresh_urls(db_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Empty databases to restore into: the same backend as ``db_url`` and the other one."""
    urls = [f"sqlite:///{tmp_path / 'restored.db'}"]
    databases: list[Iterator[str]] = []
    if POSTGRES_URL:
        databases.append(_postgres_database())
        urls.append(next(databases[-1]))
    elif db_url.startswith("sqlite"):
        need("no PostgreSQL server to restore into (set LEARNLOOP_TEST_POSTGRES_URL)")
    yield urls
    for database in databases:
        for _ in database:
            pass


def test_round_trip_within_and_across_backends(db_url: str, fresh_urls: list[str], tmp_path: Path) -> None:
    ctx = _make_ctx(db_url, MINI_PACK)
    state = _fill(ctx)
    dump = tmp_path / "learnloop.backup.gz"
    code, out = cli(db_url, "backup", str(dump))
    assert code == 0, out
    assert "tables" in out
    original = _rows(dump)
    with gzip.open(dump, "rt", encoding="utf-8") as fh:
        header = json.loads(fh.readline())
    assert header["format"] == "learnloop-backup" and header["schema_revisions"]

    for url in fresh_urls:
        code, out = cli(url, "restore", str(dump))
        assert code == 0, out
        # the restored database holds exactly what was dumped: dumped again, the same lines
        again = tmp_path / f"again-{url.split(':')[0]}.gz"
        assert cli(url, "backup", str(again))[0] == 0
        assert _rows(again) == original
        # derived mastery still equals the replay of the response log
        code, out = cli(url, "rebuild", "--check")
        assert code == 0, out
        assert "equals" in out
        # the app runs on it: the same login, the same pending item, and new rows get new ids
        restored = AppContext(settings=ctx.settings.model_copy(update={"database_url": url}))
        from learnloop.server import create_app

        with TestClient(create_app(restored)) as client:
            r = client.post("/api/v1/auth/login", json={"email": "ada@example.org", "password": PASSWORD})
            assert r.status_code == 200, r.text
            client.cookies.clear()
            h = {"Authorization": f"Bearer {r.json()['token']}"}
            assert (
                client.get("/api/v1/practice/next", headers=h).json()["item"]["id"] == state["pending_item"]
            )
            r = client.post(
                "/api/v1/auth/signup", json={"email": "bo@example.org", "name": "Bo", "password": PASSWORD}
            )
            assert r.status_code == 201, r.text
        with restored.session() as session:
            ids = session.execute(select(User.id)).scalars().all()
            assert len(ids) == len(set(ids))


def test_refuses_a_database_that_is_not_empty(db_url: str, tmp_path: Path) -> None:
    ctx = _make_ctx(db_url, MINI_PACK)  # migrated, with the pack loaded
    dump = tmp_path / "d.gz"
    assert cli(db_url, "backup", str(dump))[0] == 0
    code, out = cli(db_url, "restore", str(dump))
    assert code == 2
    assert "not empty" in out and "content_packs" in out
    with ctx.session() as session:  # nothing was added
        assert session.execute(select(User.id)).first() is None


def _rewrite(source: Path, target: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    with gzip.open(target, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(edit(lines)) + "\n")
    return target


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda lines: [
                lines[0].replace('"schema_revisions":[', '"schema_revisions":["9999_future",'),
                *lines[1:],
            ],
            "9999_future, which this Learnloop does not know (a newer schema)",
        ),
        (
            lambda lines: [lines[0].replace('"format_version":1', '"format_version":2'), *lines[1:]],
            "format version 2",
        ),
        (lambda lines: lines[:-1], "truncated (no end line)"),
        (lambda lines: [*lines[:3], "{not json", *lines[3:]], ":4: not a JSON line"),
        (lambda lines: [*lines[:3], '{"row": [1]}', *lines[3:]], ":4: a row needs"),
    ],
    ids=["newer-schema", "newer-format", "truncated", "not-json", "short-row"],
)
def test_refuses_a_bad_dump_and_leaves_nothing(db_url: str, tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    source = f"sqlite:///{tmp_path / 'source.db'}"
    _make_ctx(source, MINI_PACK)
    dump = tmp_path / "d.gz"
    assert cli(source, "backup", str(dump))[0] == 0
    bad = _rewrite(dump, tmp_path / "bad.gz", edit)
    code, out = cli(db_url, "restore", str(bad))
    assert code == 2, out
    assert message in out
    assert f"{bad}:" in out  # file:line
    # one transaction: no table was left behind
    assert not inspect(get_engine(db_url)).has_table("users")


def test_refuses_what_is_not_a_dump(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    plain = tmp_path / "plain.txt"
    plain.write_text("hello\n")
    code, out = cli(url, "restore", str(plain))
    assert code == 2 and "cannot be read as a gzip dump" in out
    code, out = cli(url, "restore", str(tmp_path / "missing.gz"))
    assert code == 2 and "no such file" in out
    code, out = cli(url, "backup", str(tmp_path / "empty.gz"))
    assert code == 2 and "no Learnloop schema" in out


def test_the_dump_is_one_snapshot(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write committed while the dump is being read (here: after its first table) is not in it."""
    from learnloop.services import backup as service
    from learnloop.services.auth import default_organisation
    from learnloop.store.models import Team

    ctx = _make_ctx(db_url, MINI_PACK)
    with ctx.session() as session:
        org_id = default_organisation(session).id
    read_tables = service._data_tables

    def tables_with_a_write_between(conn):  # type: ignore[no-untyped-def]
        tables = read_tables(conn)
        assert [t.name for t in tables].index("teams") > 0
        for index, table in enumerate(tables):
            yield table
            if index == 0:
                with ctx.session() as session:
                    session.add(Team(org_id=org_id, name="written meanwhile"))

    monkeypatch.setattr(service, "_data_tables", tables_with_a_write_between)
    summary = service.backup(db_url, tmp_path / "d.gz")
    assert summary.rows["teams"] == 0
    with ctx.session() as session:
        assert session.execute(select(Team.name)).scalars().all() == ["written meanwhile"]
