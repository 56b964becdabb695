"""Shared fixtures: a migrated database per test (SQLite, and PostgreSQL where available)."""

from __future__ import annotations

import os
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


def _postgres_database() -> Iterator[str]:
    """A fresh database on the test PostgreSQL server, dropped afterwards."""
    name = "ll_" + uuid.uuid4().hex[:12]
    admin = create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+pg8000://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        from learnloop.store.db import get_engine

        get_engine(f"{base}/{name}").dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _make_ctx(url: str, pack: Path) -> AppContext:
    # one attempt per code item, as before retries existed; tests/services/test_code_attempts.py
    # covers retries
    settings = Settings(database_url=url, default_pack=pack, code_timeout_s=3.0, code_attempts=1)
    migrate(url)
    ctx = AppContext(settings=settings)
    import_pack(ctx, pack)
    return ctx


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Database URL for store tests: every such test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("LEARNLOOP_TEST_POSTGRES_URL must be set in CI")
        pytest.skip("no PostgreSQL server (set LEARNLOOP_TEST_POSTGRES_URL)")
    yield from _postgres_database()


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    """A SQLite database with the mini pack loaded."""
    return _make_ctx(f"sqlite:///{tmp_path / 'test.db'}", MINI_PACK)


@pytest.fixture
def any_ctx(db_url: str) -> AppContext:
    """The mini pack on each database backend."""
    return _make_ctx(db_url, MINI_PACK)


@pytest.fixture
def client(ctx: AppContext):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from learnloop.server import create_app

    with TestClient(create_app(ctx)) as test_client:
        yield test_client


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
