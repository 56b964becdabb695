"""A family item in practice: each presentation shows its own instance, hints and scoring use
that instance, and the stored presentation id gives the instance back (reproducible grading)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from sqlalchemy import select

from learnloop.services import auth, practice
from learnloop.store.models import PendingItem, Response
from tests.conftest import MINI_PACK, _make_ctx
from tests.content.test_families import F1


def test_each_presentation_is_scored_on_its_own_instance(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(MINI_PACK, pack)
    (pack / "items" / "family.yaml").write_text(yaml.safe_dump([F1], sort_keys=False))
    ctx = _make_ctx(f"sqlite:///{tmp_path / 'f.db'}", pack)
    user = auth.signup(ctx, email="f@example.org", name="F", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    with ctx.session() as session:
        base = ctx.active_pack(session).items[F1["id"]]
    seen = {}
    for pid in ("p-one", "p-two", "p-three"):
        instance = base.instance_for(pid)
        seen[pid] = instance
        with ctx.session() as session:
            session.add(
                PendingItem(user_id=user.id, item_id=F1["id"], reason="next_step:", presentation_id=pid)
            )
        shown = practice.hint(ctx, user, F1["id"])
        assert shown.hint == instance.hints[0]
        second = practice.hint(ctx, user, F1["id"])
        assert second.hint == instance.hints[1] and "{" not in second.hint
        assert instance.answer is not None
        feedback = practice.answer(ctx, user, F1["id"], {"value": instance.answer}, presentation_id=pid)
        assert feedback.correct and feedback.correct_answer == f"{instance.answer:g}"
        assert feedback.explanation == instance.explanation
        # the same answer posted again gets the same feedback, scored on the same instance
        again = practice.answer(ctx, user, F1["id"], {"value": instance.answer}, presentation_id=pid)
        assert again.correct and again.response_id == feedback.response_id
    assert len({i.stem for i in seen.values()}) == 3, "three presentations, three instances"
    with ctx.session() as session:
        rows = session.execute(select(Response).where(Response.user_id == user.id)).scalars().all()
        # each stored response gives back the instance it was scored on
        for row in rows:
            assert row.presentation_id is not None
            assert base.instance_for(row.presentation_id).answer == float(row.answer["value"])
    # the canonical answer is wrong for an instance whose numbers differ
    pid = next(p for p in ("p-four", "p-five", "p-six") if base.instance_for(p).answer != base.answer)
    with ctx.session() as session:
        session.add(PendingItem(user_id=user.id, item_id=F1["id"], reason="next_step:", presentation_id=pid))
    wrong = practice.answer(ctx, user, F1["id"], {"value": base.answer}, presentation_id=pid)
    assert not wrong.correct and wrong.correct_answer == f"{base.instance_for(pid).answer:g}"
