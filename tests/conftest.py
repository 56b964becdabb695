"""Shared fixtures: a migrated database per test (SQLite, and PostgreSQL where available)."""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from learnloop.config import Settings
from learnloop.content.models import Item
from learnloop.sandbox.judge import Sandbox
from learnloop.services.context import AppContext
from learnloop.services.packs import import_pack
from learnloop.store.db import migrate

ROOT = Path(__file__).resolve().parent.parent
MINI_PACK = ROOT / "tests" / "fixtures" / "mini_pack"
DEFAULT_PACK = ROOT / "packs" / "ai_era"
POSTGRES_URL = os.environ.get("LEARNLOOP_TEST_POSTGRES_URL", "")


def answer_payload(item: Item, right: bool) -> dict[str, object]:
    """A right (the key, the reference) or a clearly wrong but valid answer to ``item``."""
    if item.kind == "choice":
        return {"choice": item.key if right else next(o for o in item.options or {} if o != item.key)}
    if item.kind == "numeric":
        return {"value": item.answer if right else -1}
    if item.kind == "text":
        return {"text": (item.reference_answers or [""])[0] if right else "no idea"}
    return {"code": item.solution if right else "pass"}


def data_dir() -> Path:
    return Path(os.environ.get("LEARNLOOP_DATA", ROOT.parent / "shared" / "data"))


def _pg_admin():  # type: ignore[no-untyped-def]
    return create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+pg8000://"), isolation_level="AUTOCOMMIT"
    )


def _postgres_database(pack: Path | None = None) -> Iterator[str]:
    """A fresh database on the test PostgreSQL server, dropped afterwards; with ``pack``, migrated
    and with that pack imported (a copy of a template database, see ``_make_ctx``)."""
    name = "ll_" + uuid.uuid4().hex[:12]
    base = POSTGRES_URL.rsplit("/", 1)[0]
    template = None if pack is None else _pg_template(pack)
    admin = _pg_admin()
    with admin.connect() as conn:
        if template is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    if pack is None:
        _UNTOUCHED_PG.add(name)
    elif template is None:
        _migrate_and_import(_settings(f"{base}/{name}", pack))
    try:
        yield f"{base}/{name}"
    finally:
        from learnloop.store.db import get_engine

        _UNTOUCHED_PG.discard(name)
        get_engine(f"{base}/{name}").dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# Migrating a database and importing a pack into it takes from a fraction of a second (SQLite, the
# mini pack) to seconds (PostgreSQL, the default pack), and hundreds of tests need one. The first
# ``_make_ctx`` of a backend and pack in this process does it on a template database; later ones
# start from a copy of that template (SQLite: the backup API; PostgreSQL: CREATE DATABASE ...
# TEMPLATE), the same schema and rows as migrating and importing again. Only an empty database
# that nothing has connected to is replaced by a copy; any other is migrated as before.
_TEMPLATE_DIR: Path | None = None
_SQLITE_TEMPLATES: dict[tuple[Path, str], Path] = {}
_PG_TEMPLATES: dict[tuple[Path, str], str] = {}
#: PostgreSQL databases made by ``_postgres_database`` and not yet handed to ``_make_ctx``
_UNTOUCHED_PG: set[str] = set()


def _template_key(pack: Path) -> tuple[Path, str] | None:
    """The pack folder and a digest of its files (a pack changed on disk gets a new template)."""
    from learnloop.content.loader import _cache_key

    key = _cache_key(pack)
    return None if key is None else (pack.resolve(), str(key[-1]))


def _template_dir() -> Path:
    global _TEMPLATE_DIR
    if _TEMPLATE_DIR is None:
        _TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="learnloop-test-templates-"))
        atexit.register(shutil.rmtree, _TEMPLATE_DIR, True)
    return _TEMPLATE_DIR


def _migrate_and_import(settings: Settings) -> None:
    migrate(settings.database_url)
    import_pack(AppContext(settings=settings), settings.default_pack)


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of the SQLite database ``source`` (with its write-ahead log) at ``target``."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _from_sqlite_template(settings: Settings) -> bool:
    from learnloop.store.db import get_engine

    url = settings.database_url
    if not url.startswith("sqlite:///") or ":memory:" in url or "?" in url:
        return False
    target = Path(url.removeprefix("sqlite:///"))
    if target.exists() or not target.parent.is_dir():
        return False
    key = _template_key(settings.default_pack)
    if key is None:
        return False
    template = _SQLITE_TEMPLATES.get(key)
    if template is None:
        template = _template_dir() / f"{uuid.uuid4().hex}.db"
        template_url = f"sqlite:///{template}"
        _migrate_and_import(settings.model_copy(update={"database_url": template_url}))
        get_engine(template_url).dispose()
        _SQLITE_TEMPLATES[key] = template
    _sqlite_copy(template, target)
    return True


def _pg_template(pack: Path) -> str | None:
    """The name of a template database with the schema and ``pack``, made on first use."""
    from learnloop.store.db import get_engine

    key = _template_key(pack)
    if key is None:
        return None
    template = _PG_TEMPLATES.get(key)
    if template is None:
        template = "ll_tpl_" + uuid.uuid4().hex[:12]
        url = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{template}"
        admin = _pg_admin()
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{template}"'))
        finally:
            admin.dispose()
        atexit.register(_drop_pg_database, template)
        _migrate_and_import(_settings(url, pack))
        get_engine(url).dispose()
        _PG_TEMPLATES[key] = template
    return template


def _from_pg_template(settings: Settings) -> bool:
    """Replace the empty database of ``settings`` (made by ``_postgres_database()``, never
    connected to) by a copy of the template of its pack."""
    url = settings.database_url
    base, _, name = url.rpartition("/")
    if not POSTGRES_URL or base != POSTGRES_URL.rsplit("/", 1)[0] or name not in _UNTOUCHED_PG:
        return False
    _UNTOUCHED_PG.discard(name)
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            busy = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            ).scalar()
        if busy or _pg_has_tables(url):
            return False
        template = _pg_template(settings.default_pack)
        if template is None:
            return False
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    return True


def _pg_has_tables(url: str) -> bool:
    from sqlalchemy.pool import NullPool

    engine = create_engine(url.replace("postgresql://", "postgresql+pg8000://"), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar()
            )
    finally:
        engine.dispose()


def _drop_pg_database(name: str) -> None:
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:  # noqa: BLE001 - the server may be gone at exit; its cluster is thrown away
        pass
    finally:
        admin.dispose()


def _settings(url: str, pack: Path) -> Settings:
    # one attempt per code item, as before retries existed; tests/services/test_code_attempts.py
    # covers retries
    return Settings(database_url=url, default_pack=pack, code_timeout_s=3.0, code_attempts=1)


def _make_ctx(url: str, pack: Path) -> AppContext:
    settings = _settings(url, pack)
    if not (_from_sqlite_template(settings) or _from_pg_template(settings)):
        _migrate_and_import(settings)
    return AppContext(settings=settings)


def _need_postgres() -> None:
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("LEARNLOOP_TEST_POSTGRES_URL must be set in CI")
        pytest.skip("no PostgreSQL server (set LEARNLOOP_TEST_POSTGRES_URL)")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Database URL for store tests: every such test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    _need_postgres()
    yield from _postgres_database()


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    """A SQLite database with the mini pack loaded."""
    return _make_ctx(f"sqlite:///{tmp_path / 'test.db'}", MINI_PACK)


@pytest.fixture(params=["sqlite", "postgres"])
def any_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppContext]:
    """The mini pack on each database backend (as ``db_url``)."""
    if request.param == "sqlite":
        yield _make_ctx(f"sqlite:///{tmp_path / 'test.db'}", MINI_PACK)
        return
    _need_postgres()
    databases = _postgres_database(MINI_PACK)
    try:
        yield AppContext(settings=_settings(next(databases), MINI_PACK))
    finally:
        next(databases, None)


@pytest.fixture
def client(ctx: AppContext):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from learnloop.server import create_app

    with TestClient(create_app(ctx)) as test_client:
        yield test_client


@pytest.fixture(params=["sqlite", "postgres"])
def ai_any_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppContext]:
    """The default ai_era pack on each database backend (as ``any_ctx``)."""
    if request.param == "sqlite":
        yield _make_ctx(f"sqlite:///{tmp_path / 'ai.db'}", DEFAULT_PACK)
        return
    _need_postgres()
    databases = _postgres_database(DEFAULT_PACK)
    try:
        yield AppContext(settings=_settings(next(databases), DEFAULT_PACK))
    finally:
        next(databases, None)


@pytest.fixture
def ai_ctx(tmp_path: Path) -> AppContext:
    """A SQLite database with the default ai_era pack loaded."""
    return _make_ctx(f"sqlite:///{tmp_path / 'ai.db'}", DEFAULT_PACK)


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """The code sandbox (bubblewrap); in CI (CI=true) its absence fails the tests that need it."""
    box = Sandbox(max_concurrent=2, queue_wait_s=60)
    state = box.availability(refresh=True)
    if not state.ok:
        message = f"the code sandbox is not available: {state.reason} (run scripts/test.sh as root once)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return box


def need(reason: str) -> None:
    """Skip a test whose component or data is missing; in CI (CI=true) fail it instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI: bash scripts/test.sh installs it)")
    pytest.skip(reason)


def need_module(name: str) -> None:
    """``need`` for a Python module (an optional extra)."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        need(f"{name} is not installed")


def http_learner(base: str, email: str, password: str = "violet-harbour-57-lantern") -> dict[str, str]:
    """Sign up a learner on a running server at ``base``, enrol them as "builder" and return the
    bearer headers."""
    import httpx

    r = httpx.post(
        f"{base}/api/v1/auth/signup", json={"email": email, "name": "Ada", "password": password}, timeout=60
    )
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    r = httpx.post(f"{base}/api/v1/enrolment", json={"role_id": "builder"}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return headers
