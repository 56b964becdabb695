"""Mastery from evidence in the product: bounded steps, wrong open answers lower mastery, the skill
map shows uncertainty and what a target still needs, and practice meets every kind early."""

from __future__ import annotations

from learnloop.content.loader import load_pack
from learnloop.services import auth, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from tests.conftest import MINI_PACK, answer_payload

PACK = load_pack(MINI_PACK)


def _learner(ctx: AppContext, email: str = "ev@example.org") -> CurrentUser:
    user = auth.signup(ctx, email=email, name="E", password="tidal-ferry-quartz-81").user
    practice.enrol(ctx, user, "builder")
    return user


def _answer_next(ctx: AppContext, user: CurrentUser, right: bool) -> tuple[str, practice.Feedback]:
    shown = practice.next_item(ctx, user)
    item = PACK.item(shown.item["id"])
    return item.id, practice.answer(ctx, user, item.id, answer_payload(item, right=right))


def test_no_answer_moves_mastery_by_more_than_a_quarter_and_wrong_open_answers_lower_it(
    ctx: AppContext,
) -> None:
    user = _learner(ctx)
    kinds_wrong: set[str] = set()
    for n in range(24):
        right = n % 4 != 3
        item_id, feedback = _answer_next(ctx, user, right)
        for change in feedback.mastery:
            assert abs(change.after - change.before) <= 0.25 + 1e-9
            if not feedback.correct:
                assert change.after < change.before or change.before == 0.0
        if not feedback.correct:
            kinds_wrong.add(PACK.item(item_id).kind)
    assert kinds_wrong  # wrong answers were given and each lowered mastery


def test_two_right_choices_do_not_meet_a_target_and_the_map_says_why(ctx: AppContext) -> None:
    user = _learner(ctx, "map@example.org")
    for _ in range(2):
        _answer_next(ctx, user, True)
    sm = practice.skill_map(ctx, user.id)
    skills = [s for d in sm.domains for s in d.skills]
    assert sm.targets_met == 0
    for s in skills:
        assert s.mastery_low <= s.mastery <= s.mastery_high  # the uncertainty brackets the estimate
        assert s.mastery < 0.8 or s.status != "met"


def test_a_right_streak_meets_targets_only_with_evidence_and_every_kind(ctx: AppContext) -> None:
    user = _learner(ctx, "streak@example.org")
    kinds: dict[str, set[str]] = {}
    for _ in range(30):
        shown = practice.next_item(ctx, user)
        item = PACK.item(shown.item["id"])
        kinds.setdefault(shown.skill_id, set()).add(item.kind)
        practice.answer(ctx, user, item.id, answer_payload(item, right=True))
    sm = practice.skill_map(ctx, user.id)
    by_id = {s.skill_id: s for d in sm.domains for s in d.skills}
    for status in by_id.values():
        if status.status == "met":
            assert status.distinct_items >= 1 and status.evidence >= status.evidence_needed
            assert not status.missing
    # within the first items of a skill every kind it has comes up
    prompts = {i.kind for i in PACK.items if i.skills[0] == "basics.prompts"}
    assert prompts <= kinds.get("basics.prompts", set())


def _mixed_answers(ctx: AppContext, user: CurrentUser, n: int) -> None:
    for k in range(n):
        _answer_next(ctx, user, right=k % 5 != 2)


def test_stored_evidence_is_the_fold_of_the_log_and_a_rebuild_keeps_it(any_ctx: AppContext) -> None:
    """Each answer folds the evidence into the mastery row; it equals folding the whole log
    again, and ``rebuild`` (which replays the log) leaves it, and mastery, unchanged."""
    from sqlalchemy import select

    from learnloop.services import mastery
    from learnloop.store.models import Mastery

    user = _learner(any_ctx, "stored@example.org")
    _mixed_answers(any_ctx, user, 18)
    with any_ctx.session() as session:
        stored = mastery.skill_evidence(session, user.id)
        folded = {s: ev for (_u, s), ev in mastery._fold_log(session, [user.id], None).items()}
        rows = session.execute(select(Mastery).where(Mastery.user_id == user.id)).scalars().all()
        summary = {m.skill_id: (m.ev_items, m.ev_open, m.ev_cusum, m.ev_last_right) for m in rows}
        live = mastery.snapshot(session)
    assert stored == folded and len(stored) >= 2
    assert sum(ev.answers for ev in stored.values()) >= 18  # every answer of every skill
    for skill_id, ev in stored.items():
        assert summary[skill_id][:2] == (ev.n_items, ev.open_right)
        assert summary[skill_id][2] == ev.cusum and summary[skill_id][3] == ev.last_right_at
    with any_ctx.session() as session:
        mastery.rebuild_all(session)
    with any_ctx.session() as session:
        assert mastery.snapshot(session) == live
        assert mastery.skill_evidence(session, user.id) == stored


def test_rows_stored_before_the_evidence_column_are_read_from_the_log(ctx: AppContext) -> None:
    """A mastery row without stored evidence (written before migration 0034) reads as the fold
    of the log, in a learner's map and in a team's matrix, and the skill's next answer stores
    it."""
    import time

    import numpy as np
    from sqlalchemy import update

    from learnloop.services import mastery
    from learnloop.store.models import Mastery

    users = [_learner(ctx, f"legacy{k}@example.org") for k in range(3)]
    for k, user in enumerate(users):
        _mixed_answers(ctx, user, 6 + 6 * k)
    skill_ids = [s.id for s in PACK.skills]
    rule = mastery.EvidenceRule(min_items=2, need_open_kind=True, max_age_days=30, threshold=1.0)
    ids = [u.id for u in users]
    bank = {s: [i for i in PACK.items if s in i.skills] for s in skill_ids}
    now = time.time()

    def team(session) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
        rows = {(m.user_id, m.skill_id): m.p_known for m in session.query(Mastery)}
        matrix = np.array([[rows.get((u, s), 0.1) for s in skill_ids] for u in ids])
        targets = np.full(matrix.shape, 0.3)
        targets[:, 0] = np.nan
        return matrix, mastery.evidence_matrix(session, ids, skill_ids, bank, rule, matrix, targets, now)

    with ctx.session() as session:
        before = {u: mastery.skill_evidence(session, u) for u in ids}
        matrix, met = team(session)
        live = mastery.snapshot(session)
        session.execute(
            update(Mastery).values(evidence=None, ev_items=0, ev_open=False, ev_cusum=0.0, ev_last_right=None)
        )
    with ctx.session() as session:
        assert {u: mastery.skill_evidence(session, u) for u in ids} == before
        again_matrix, again = team(session)
        assert (again_matrix == matrix).all() and (again == met).all()
        # the team matrix is the rule applied to each learner's skill, cell by cell
        for i, u in enumerate(ids):
            for j, s in enumerate(skill_ids):
                if j == 0:
                    assert again[i, j]
                    continue
                gaps = mastery.target_gaps_for(bank[s], matrix[i, j], 0.3, before[u].get(s), rule, now)
                assert again[i, j] == (not gaps), (u, s, gaps)
        assert mastery.snapshot(session) == live  # what rebuild --check compares
    assert met[:, 1:].any() and not met[:, 1:].all()  # the check tells learners apart
    with ctx.session() as session:  # learnloop rebuild --evidence, for the other learners
        filled = mastery.backfill_evidence(session, ids[1:])
        assert filled == session.query(Mastery).filter(Mastery.user_id.in_(ids[1:])).count() > 0
    with ctx.session() as session:
        assert mastery.snapshot(session) == live
        assert {u: mastery.skill_evidence(session, u) for u in ids} == before
    _answer_next(ctx, users[0], True)
    with ctx.session() as session:
        stored = (
            session.query(Mastery).filter(Mastery.user_id == ids[0], Mastery.evidence.is_not(None)).count()
        )
        assert stored >= 1
        assert mastery.skill_evidence(session, ids[0]) == {
            s: ev for (_u, s), ev in mastery._fold_log(session, [ids[0]], None).items()
        }
