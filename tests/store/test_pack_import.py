"""Importing packs: a broken pack changes nothing; a valid one becomes active atomically."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from learnloop.content.loader import PackError
from learnloop.services.context import AppContext
from learnloop.services.packs import export_pack, import_pack
from learnloop.store.models import ContentPack
from tests.conftest import MINI_PACK


def _state(ctx: AppContext) -> list[tuple[int, str, bool]]:
    with ctx.session() as session:
        return [(r.id, r.fingerprint, r.is_active) for r in session.execute(select(ContentPack)).scalars()]


def test_broken_import_leaves_database_unchanged(any_ctx: AppContext, tmp_path: Path) -> None:
    before = _state(any_ctx)
    broken = tmp_path / "broken"
    shutil.copytree(MINI_PACK, broken)
    (broken / "skills.yaml").write_text(
        "- id: basics.tokens\n  name: T\n  domain: nowhere\n  prerequisites: [x.y]\n"
    )
    with pytest.raises(PackError) as info:
        import_pack(any_ctx, broken)
    assert len(info.value.problems) >= 3
    assert _state(any_ctx) == before


def test_export_import_round_trip(any_ctx: AppContext, tmp_path: Path) -> None:
    export_pack(any_ctx, tmp_path / "exported")
    summary = import_pack(any_ctx, tmp_path / "exported")
    assert summary.changed is False  # same meaning, so nothing new to activate
