"""Code items: a wrong submission may be tried again within its presentation; only the first
attempt counts; the solution waits until the last attempt; without a sandbox code is off."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from learnloop.errors import Conflict
from learnloop.sandbox import judge
from learnloop.sandbox.judge import Sandbox, SandboxUnavailable
from learnloop.services import auth, practice
from learnloop.services.context import AppContext
from learnloop.store.models import Mastery, PendingItem, Response, RetryAttempt
from tests.conftest import MINI_PACK, _make_ctx

ITEM = "basics.prompts.code"


@pytest.fixture
def code_ctx(tmp_path: Path, sandbox: Sandbox) -> AppContext:
    ctx = _make_ctx(f"sqlite:///{tmp_path / 'code.db'}", MINI_PACK)
    ctx.settings = ctx.settings.model_copy(update={"code_attempts": 3})
    return ctx


def _learner_on_code_item(ctx: AppContext, email: str = "c@example.org") -> tuple[auth.CurrentUser, str]:
    user = auth.signup(ctx, email=email, name="C", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    with ctx.session() as session:
        session.add(
            PendingItem(user_id=user.id, item_id=ITEM, reason="next_step:", presentation_id="p-" + email)
        )
    return user, "p-" + email


def _counts(ctx: AppContext, user_id: int) -> tuple[int, int, float]:
    with ctx.session() as session:
        responses = session.scalar(
            select(func.count()).select_from(Response).where(Response.user_id == user_id)
        )
        retries = session.scalar(
            select(func.count()).select_from(RetryAttempt).where(RetryAttempt.user_id == user_id)
        )
        mastery = session.scalar(select(func.sum(Mastery.p_known)).where(Mastery.user_id == user_id))
        return int(responses or 0), int(retries or 0), float(mastery or 0.0)


def test_retries_are_stored_but_only_the_first_counts(code_ctx: AppContext) -> None:
    ctx = code_ctx
    user, pid = _learner_on_code_item(ctx)
    with ctx.session() as session:
        item = ctx.active_pack(session).items[ITEM]
    first = practice.answer(ctx, user, ITEM, {"code": "pass"}, presentation_id=pid)
    assert not first.correct and first.attempt == 1 and first.attempts_left == 2
    assert first.correct_answer is None and first.explanation == ""  # nothing given away yet
    assert first.mastery, "the first attempt updates mastery"
    after_first = _counts(ctx, user.id)
    assert after_first[:2] == (1, 0)
    # the same answer again (a double click) is not another attempt
    again = practice.answer(ctx, user, ITEM, {"code": "pass"}, presentation_id=pid)
    assert again.attempt == 1 and again.attempts_left == 2 and _counts(ctx, user.id) == after_first
    # the item stays on screen in the same presentation
    assert practice.next_item(ctx, user).presentation_id == pid
    second = practice.answer(
        ctx, user, ITEM, {"code": "def fill(t, v):\n    return t\n"}, presentation_id=pid
    )
    assert not second.correct and second.attempt == 2 and second.attempts_left == 1
    assert second.mastery == [] and _counts(ctx, user.id) == (1, 1, after_first[2])
    third = practice.answer(ctx, user, ITEM, {"code": item.solution}, presentation_id=pid)
    assert third.correct and third.attempt == 3 and third.attempts_left == 0
    assert third.correct_answer == item.solution and third.explanation
    assert _counts(ctx, user.id) == (1, 2, after_first[2]), "a later right attempt changes no mastery"
    assert practice.next_item(ctx, user).presentation_id != pid
    with pytest.raises(Conflict):
        practice.answer(ctx, user, ITEM, {"code": "x = 1"}, presentation_id=pid)
    # the last attempt posted again after the presentation ended gets its feedback back
    late = practice.answer(ctx, user, ITEM, {"code": item.solution}, presentation_id=pid)
    assert late.correct and late.attempt == 3 and late.attempts_left == 0
    assert _counts(ctx, user.id) == (1, 2, after_first[2])


def test_the_last_wrong_attempt_shows_the_solution(code_ctx: AppContext) -> None:
    ctx = code_ctx
    user, pid = _learner_on_code_item(ctx, "d@example.org")
    for n, code in enumerate(["pass", "x = 1", "y = 2"], start=1):
        fb = practice.answer(ctx, user, ITEM, {"code": code}, presentation_id=pid)
        assert fb.attempt == n and fb.attempts_left == 3 - n
    assert fb.correct_answer and _counts(ctx, user.id)[:2] == (1, 2)


def test_giving_up_shows_the_solution(code_ctx: AppContext) -> None:
    ctx = code_ctx
    user, pid = _learner_on_code_item(ctx, "e@example.org")
    with pytest.raises(Conflict):  # nothing answered yet: there is nothing to give up
        practice.reveal(ctx, user, pid)
    practice.answer(ctx, user, ITEM, {"code": "pass"}, presentation_id=pid)
    shown = practice.reveal(ctx, user, pid)
    assert shown.correct_answer and not shown.correct
    with pytest.raises(Conflict):
        practice.reveal(ctx, user, pid)
    assert practice.next_item(ctx, user).presentation_id != pid


def test_without_a_sandbox_code_items_are_off(code_ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = code_ctx
    off = Sandbox(bwrap="/nonexistent/bwrap")
    monkeypatch.setattr(judge, "_sandbox", off)
    user, pid = _learner_on_code_item(ctx, "f@example.org")
    with pytest.raises(SandboxUnavailable, match="turned off") as raised:
        practice.answer(ctx, user, ITEM, {"code": "pass"}, presentation_id=pid)
    assert raised.value.status == 503 and _counts(ctx, user.id)[:2] == (0, 0)
    # the code item already on screen is replaced, not left unanswerable
    assert practice.next_item(ctx, user).item["kind"] != "code"
    for _ in range(15):
        shown = practice.next_item(ctx, user)
        assert shown.item["kind"] != "code"
        with ctx.session() as session:
            item = ctx.active_pack(session).items[shown.item["id"]]
        from tests.conftest import answer_payload

        practice.answer(ctx, user, item.id, answer_payload(item, True), presentation_id=shown.presentation_id)
