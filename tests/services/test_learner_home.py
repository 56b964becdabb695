"""The learner's home (progress, due reviews, next step, recent answers), the lesson index and the
answer shown back on the feedback page."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnloop import i18n
from learnloop.content.loader import load_pack
from learnloop.errors import NotFound
from learnloop.services import answers, auth, guidance, packs, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from tests.conftest import DEFAULT_PACK, MINI_PACK, _make_ctx, answer_payload

PACK = load_pack(MINI_PACK)


def _learner(ctx: AppContext, email: str = "h@example.org", role: str | None = "builder") -> CurrentUser:
    user = auth.signup(ctx, email=email, name="H", password="tidal-ferry-quartz-81").user
    if role:
        practice.enrol(ctx, user, role)
    return user


def test_home_without_a_role_has_no_path_and_no_answers(ctx: AppContext) -> None:
    home = guidance.learner_home(ctx, _learner(ctx, role=None))
    assert home.path.role_name is None and home.recent == [] and home.answers_today == 0


def test_home_shows_progress_next_step_and_the_latest_answers_newest_first(ctx: AppContext) -> None:
    user = _learner(ctx)
    given = []
    for right in (True, False, True):
        item_id = practice.next_item(ctx, user).item["id"]
        item = PACK.item(item_id)
        if item.kind in ("text", "code"):  # keep to the graders that need no model or sandbox
            right = True
        practice.answer(ctx, user, item_id, answer_payload(item, right))
        given.append((item_id, right))
    home = guidance.learner_home(ctx, user, recent=2)
    assert home.path.role_name and home.path.targets_total >= 1
    assert 0 <= home.path.targets_met <= home.path.targets_total
    assert home.path.next is not None
    assert home.answers_today == 3
    assert [(a.item_id, a.correct) for a in home.recent] == given[::-1][:2]
    assert all(a.skill_name for a in home.recent)


def test_lesson_index_lists_every_lesson_once_by_domain(ctx: AppContext) -> None:
    domains = packs.lesson_index(ctx)
    listed = [lesson.id for d in domains for lesson in d.lessons]
    assert sorted(listed) == sorted(lesson.id for lesson in PACK.lessons)
    assert all(d.name and d.lessons for d in domains)
    assert all(lesson.title and lesson.minutes > 0 for d in domains for lesson in d.lessons)


def test_shown_answer_reads_like_the_correct_one() -> None:
    choice = next(i for i in PACK.items if i.kind == "choice")
    numeric = next(i for i in PACK.items if i.kind == "numeric")
    assert choice.options and choice.key
    assert (
        answers.shown_answer(choice, {"choice": choice.key}) == f"{choice.key}) {choice.options[choice.key]}"
    )
    unit = f" {numeric.unit}" if numeric.unit else ""
    assert answers.shown_answer(numeric, {"value": "1,5"}) == "1,5" + unit
    assert answers.shown_answer(numeric, {"choice": "a"}) is None


def test_shown_answer_to_an_unknown_item_is_none(ctx: AppContext) -> None:
    i18n.set_locale("en")
    assert answers.shown_answer_to(ctx, "no.such.item", {"choice": "a"}) is None


def test_home_and_path_name_role_and_skills_in_the_ui_language(tmp_path: Path) -> None:
    ctx = _make_ctx(f"sqlite:///{tmp_path / 'zh.db'}", DEFAULT_PACK)
    pack = load_pack(DEFAULT_PACK)
    chinese = pack.localized("zh_CN")
    role = pack.roles[0]
    user = _learner(ctx, role=role.id)
    i18n.set_locale("zh_CN")
    try:
        home = guidance.learner_home(ctx, user)
    finally:
        i18n.set_locale("en")
    zh_role = next(r for r in chinese.roles if r.id == role.id)
    assert zh_role.name != role.name and home.path.role_name == zh_role.name
    assert home.path.next is not None
    assert home.path.next.skill_name == chinese.skill(home.path.next.skill_id).name
    assert home.path.next.skill_name in home.path.next.reason_text


def test_lesson_index_for_one_skill(ctx: AppContext) -> None:
    skill = PACK.lessons[0].skills[0]
    listed = [lesson.id for d in packs.lesson_index(ctx, skill_id=skill) for lesson in d.lessons]
    assert listed and sorted(listed) == sorted(x.id for x in PACK.lessons if skill in x.skills)
    with pytest.raises(NotFound):
        packs.lesson_index(ctx, skill_id="no.such.skill")
