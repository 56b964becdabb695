"""Live mastery under the best knowledge-tracing model: ``fit kt`` chooses and stores it, every
answer updates the learner's stored state, a rebuild replays to the same state, and bad input
gets a clear message or the prior, never a crash or NaN."""

from __future__ import annotations

import math
import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from learnloop.config import Settings
from learnloop.content.loader import load_pack
from learnloop.errors import InvalidInput
from learnloop.science.evidence import item_guess, mastery_step
from learnloop.science.kt import BKTParams, LogisticKT, ResponseLog
from learnloop.services import auth, practice
from learnloop.services.auth import CurrentUser, default_organisation
from learnloop.services.calibration import fit_kt
from learnloop.services.context import AppContext
from learnloop.services.mastery import (
    apply_answer,
    load_model,
    mastery_of,
    predicted_success,
    rebuild_all,
    snapshot,
)
from learnloop.store.models import KTState, Mastery, MasteryHistory, ModelParams, Response, as_utc, utcnow
from tests.conftest import MINI_PACK, answer_payload

PACK = load_pack(MINI_PACK)

# Item easiness on the logit scale: strong differences inside a skill, which per-skill BKT
# cannot see and the logistic model's item difficulties can.
EASINESS = {
    "basics.tokens.count": 2.5,
    "basics.tokens.cost": -2.5,
    "basics.tokens.window": 0.0,
    "basics.prompts.role": 2.0,
    "basics.prompts.code": -2.0,
    "apps.rag.why": 0.5,
}
SKILLS = {
    "basics.tokens.count": ["basics.tokens"],
    "basics.tokens.cost": ["basics.tokens"],
    "basics.tokens.window": ["basics.tokens"],
    "basics.prompts.role": ["basics.prompts"],
    "basics.prompts.code": ["basics.prompts"],
    "apps.rag.why": ["apps.rag", "basics.prompts"],
}


def _simulate_log(
    ctx: AppContext, learners: int, answers: int, seed: int = 3, items: list[str] | None = None
) -> list[int]:
    """Learners with answers written straight into the log (as an import or a demo would)."""
    rng = np.random.default_rng(seed)
    pool = items or list(EASINESS)
    start = utcnow() - timedelta(days=30)
    ids = []
    with ctx.session() as session:
        org = auth.default_organisation(session)
        for u in range(learners):
            user = auth.create_user(
                session,
                org_id=org.id,
                email=f"sim{u}@example.org",
                name=f"Sim {u}",
                password="tidal-ferry-quartz-81",
                password_hash="x",
                is_simulated=True,
            )
            ids.append(user.id)
            ability = rng.normal(0.0, 0.7)
            moment = start + timedelta(hours=float(rng.uniform(0, 48)))
            for k in range(answers):
                item = pool[int(rng.integers(len(pool)))]
                z = ability + EASINESS[item] + 0.15 * k - 0.5
                correct = bool(rng.random() < 1.0 / (1.0 + math.exp(-z)))
                moment += timedelta(minutes=float(rng.uniform(1, 30)))
                session.add(
                    Response(
                        org_id=org.id,
                        user_id=user.id,
                        item_id=item,
                        skills=SKILLS[item],
                        kind="choice",
                        context="practice",
                        answer={"simulated": True},
                        correct=correct,
                        score=float(correct),
                        hints_used=0,
                        duration_ms=1000,
                        created_at=moment,
                    )
                )
    return ids


def _learner(ctx: AppContext, email: str) -> CurrentUser:
    login = auth.signup(ctx, email=email, name="L", password="tidal-ferry-quartz-81")
    practice.enrol(ctx, login.user, "builder")
    return login.user


def _answer_live(ctx: AppContext, email: str | CurrentUser, n: int, correct_every: int) -> int:
    """``n`` answers through the practice service; returns the learner's id."""
    user = _learner(ctx, email) if isinstance(email, str) else email
    for k in range(n):
        shown = practice.next_item(ctx, user)
        item = PACK.item(shown.item["id"])
        right = k % correct_every != 0
        payload = answer_payload(item, right)
        practice.answer(ctx, user, item.id, payload)
    return user.id


def _states(ctx: AppContext) -> dict[int, tuple[int, int, dict]]:
    with ctx.session() as session:
        return {
            s.user_id: (s.model_params_id, s.last_response_id, s.state)
            for s in session.execute(select(KTState)).scalars()
        }


def _all_finite(ctx: AppContext) -> None:
    with ctx.session() as session:
        rows = session.execute(select(Mastery)).scalars().all()
        history = session.execute(select(MasteryHistory.p_known)).scalars().all()
    assert rows
    for m in rows:
        assert math.isfinite(m.p_known) and 0.0 <= m.p_known <= 1.0
        assert m.p_correct is not None and math.isfinite(m.p_correct) and 0.0 <= m.p_correct <= 1.0
    assert all(math.isfinite(p) for p in history)


def test_fit_kt_auto_chooses_the_better_model_on_held_out_learners_and_stores_it(ctx: AppContext) -> None:
    _simulate_log(ctx, learners=40, answers=20)
    summary = fit_kt(ctx)
    assert summary.held_out_auc["bkt"] is not None and summary.held_out_auc["logistic"] is not None
    # item difficulty is most of the signal here: only the logistic model can use it
    assert summary.held_out_auc["logistic"] > summary.held_out_auc["bkt"]
    assert summary.model == "logistic" and not summary.notes
    assert summary.rebuilt_answers == 40 * 20
    with ctx.session() as session:
        row = session.execute(select(ModelParams).where(ModelParams.kind.like("kt.org.%"))).scalars().one()
        assert row.params["model"] == "logistic"
        assert row.params["selection"]["auc"] == summary.held_out_auc
        assert set(row.params["skills"]) == {"basics.tokens", "basics.prompts", "apps.rag"}
        assert row.params["bkt"]["skills"]["basics.tokens"]["p_guess"] <= 0.3
        model = load_model(session, default_organisation(session).id)
        assert model.kind == "logistic" and model.params_id == row.id
        assert session.scalar(select(func.count()).select_from(KTState)) == 40
    _all_finite(ctx)


def test_small_log_keeps_bkt_and_says_why(ctx: AppContext) -> None:
    _simulate_log(ctx, learners=3, answers=5)
    summary = fit_kt(ctx)
    assert summary.model == "bkt"
    assert summary.held_out_auc == {"bkt": None, "logistic": None}
    assert "too few" in summary.notes[0]
    with ctx.session() as session:
        assert load_model(session, default_organisation(session).id).kind == "bkt"
        assert session.scalar(select(func.count()).select_from(KTState)) == 0
    _all_finite(ctx)


def test_empty_log_and_unknown_model_are_clear_errors(ctx: AppContext) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        fit_kt(ctx)
    with pytest.raises(InvalidInput, match="auto, bkt, logistic or gbdt"):
        fit_kt(ctx, model="dkt")
    with ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(ModelParams)) == 0


def test_a_learner_with_one_answer_gets_finite_mastery_under_either_model(ctx: AppContext) -> None:
    _simulate_log(ctx, learners=1, answers=1, items=["basics.tokens.count"])
    for model in ("logistic", "bkt"):
        summary = fit_kt(ctx, model=model)
        assert summary.model == model and summary.rebuilt_answers == 1
        _all_finite(ctx)


def test_a_skill_never_seen_in_training_starts_from_the_prior(ctx: AppContext) -> None:
    # the log has basics.tokens only; basics.prompts and apps.rag are new to the model
    _simulate_log(ctx, learners=12, answers=20, items=["basics.tokens.count", "basics.tokens.cost"])
    assert fit_kt(ctx, model="logistic").model == "logistic"
    user_id = _answer_live(ctx, "new@example.org", 8, 2)
    with ctx.session() as session:
        model = load_model(session, default_organisation(session).id)
        assert model.traces("basics.tokens") and not model.traces("basics.prompts")
        rows = mastery_of(session, user_id)
        history = session.execute(
            select(MasteryHistory.skill_id, MasteryHistory.p_known, Response.correct, Response.item_id)
            .join(Response, Response.id == MasteryHistory.response_id)
            .where(MasteryHistory.user_id == user_id)
            .order_by(MasteryHistory.id)
        ).all()
    unseen = [(p, ok, item) for skill, p, ok, item in history if skill == "basics.prompts"]
    assert unseen, "the learner practised an unseen skill"
    # documented: BKT with the population's default parameters and the item's guess rate, from
    # its prior, each step bounded
    expected = model.default.p_init
    for p, ok, item_id in unseen:
        guess = item_guess(PACK.item(item_id).kind, len(PACK.item(item_id).options or {}) or None)
        expected = mastery_step(expected, ok, model.default, guess)
        assert p == pytest.approx(expected, abs=1e-12)
    assert all(math.isfinite(r.p_known) for r in rows.values())


def test_labels_other_than_right_or_wrong_are_rejected_and_change_nothing(ctx: AppContext) -> None:
    ids = _simulate_log(ctx, learners=12, answers=20)
    fit_kt(ctx, model="logistic")
    with ctx.session() as session:
        before = snapshot(session)
        response_id = session.scalars(select(Response.id).order_by(Response.id.desc())).first()
    assert response_id is not None
    for label in (2, 0.5, None, "1", float("nan")):
        with pytest.raises(InvalidInput, match="right"), ctx.session() as session:
            apply_answer(
                session,
                load_model(session, default_organisation(session).id),
                mastery_of(session, ids[0]),
                user_id=ids[0],
                skills=["basics.tokens"],
                correct=label,
                response_id=response_id + 1,  # type: ignore[arg-type]
                at=utcnow(),
                item_id="basics.tokens.count",
            )
    with ctx.session() as session:
        assert snapshot(session) == before


def test_no_nan_reaches_the_store_even_from_broken_weights(ctx: AppContext) -> None:
    _simulate_log(ctx, learners=12, answers=20)
    fit_kt(ctx, model="logistic")
    with ctx.session() as session:
        row = session.execute(select(ModelParams).where(ModelParams.kind.like("kt.org.%"))).scalars().one()
        params = dict(row.params)
        weights = dict(params["params"])
        weights["coef"] = [float("nan")] * len(weights["coef"])
        params["params"] = weights
        session.add(ModelParams(kind=row.kind, n_responses=row.n_responses, params=params))
    with ctx.session() as session:
        assert rebuild_all(session) == 12 * 20
    _answer_live(ctx, "nan@example.org", 4, 2)
    _all_finite(ctx)


def test_logistic_state_online_equals_batch_prediction(ctx: AppContext) -> None:
    """The state the store keeps gives the same P(correct) as the fitted model's batch path."""
    _simulate_log(ctx, learners=12, answers=20)
    fit_kt(ctx, model="logistic")
    with ctx.session() as session:
        model = load_model(session, default_organisation(session).id)
        assert model.tracer is not None
        state_row = session.execute(select(KTState)).scalars().first()
        assert state_row is not None
        answers = session.execute(
            select(Response.item_id, Response.skills, Response.correct, Response.created_at)
            .where(Response.user_id == state_row.user_id)
            .order_by(Response.id)
        ).all()
    rows = [
        (model.skill_codes[s], model.item_codes[i], int(c), at, a)
        for a, (i, skills, c, at) in enumerate(answers)
        for s in skills
    ]
    probe = model.skill_codes["basics.tokens"]
    log = ResponseLog(
        user=np.zeros(len(rows) + 1, dtype=np.int64),
        skill=np.array([r[0] for r in rows] + [probe], dtype=np.int64),
        correct=np.array([r[2] for r in rows] + [0], dtype=np.int8),
        item=np.array([r[1] for r in rows] + [model.item_codes["basics.tokens.count"]], dtype=np.int64),
        timestamp=np.array([as_utc(r[3]).timestamp() for r in rows] + [as_utc(rows[-1][3]).timestamp()]),
        # the rows of one answer share its id: none of them reads another (as in the live state)
        answer=np.array([r[4] for r in rows] + [len(answers)], dtype=np.int64),
    )
    batch = model.tracer.predict_proba(log)[-1]
    online = model.tracer.predict_next(
        state_row.state, probe, model.item_codes["basics.tokens.count"], as_utc(rows[-1][3]).timestamp()
    )
    assert online == pytest.approx(batch, abs=1e-9)
    assert isinstance(model.tracer, LogisticKT)


def test_rebuild_equals_live_under_the_logistic_model(any_ctx: AppContext) -> None:
    _simulate_log(any_ctx, learners=12, answers=20)
    assert fit_kt(any_ctx, model="logistic").model == "logistic"
    learner = _learner(any_ctx, "a@example.org")
    _answer_live(any_ctx, learner, 10, 3)
    # a learner whose stored state is lost (or was kept under another model) is replayed from the log
    with any_ctx.session() as session:
        session.execute(KTState.__table__.delete().where(KTState.user_id == learner.id))
    _answer_live(any_ctx, "b@example.org", 7, 2)
    _answer_live(any_ctx, learner, 4, 2)
    with any_ctx.session() as session:
        live = snapshot(session)
        n_answers = session.scalar(select(func.count()).select_from(Response))
    live_states = _states(any_ctx)
    assert live and all(v[4] is not None for v in live.values())
    assert learner.id in live_states and len(live_states) == 12 + 2
    with any_ctx.session() as session:
        session.execute(
            Mastery.__table__.update().values(p_known=0.0, p_correct=None)
        )  # corrupt derived state
        session.execute(KTState.__table__.delete())
    with any_ctx.session() as session:
        assert rebuild_all(session) == n_answers
    with any_ctx.session() as session:
        assert snapshot(session) == live
    assert _states(any_ctx) == live_states
    _all_finite(any_ctx)


def test_fit_kt_command_line(tmp_path: Path) -> None:
    from tests.test_cli import run as run_cli

    db = tmp_path / "cli.db"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), db)

    assert run("init").returncode == 0
    done = run("fit", "kt")
    assert done.returncode == 2 and "empty" in done.stderr
    done = run("fit", "kt", "--model", "dkt")
    assert done.returncode == 2 and "auto, bkt, logistic or gbdt" in done.stderr
    ctx = AppContext(settings=Settings(database_url=f"sqlite:///{db}", default_pack=MINI_PACK))
    _simulate_log(ctx, learners=12, answers=20)
    done = run("fit", "kt", "--model", "auto")
    assert done.returncode == 0, done.stderr
    assert "held-out AUC: bkt" in done.stdout and "logistic" in done.stdout
    assert run("rebuild", "--check").returncode == 0


def test_parameters_stored_by_older_versions_still_drive_mastery(ctx: AppContext) -> None:
    """A database fitted before the ``kt`` kind existed keeps its per-skill BKT."""
    tokens = BKTParams(p_init=0.4, p_learn=0.2, p_guess=0.25, p_slip=0.05)
    with ctx.session() as session:
        session.add(
            ModelParams(
                kind="bkt",
                n_responses=10,
                params={"default": BKTParams().to_dict(), "skills": {"basics.tokens": tokens.to_dict()}},
            )
        )
    with ctx.session() as session:
        model = load_model(session, default_organisation(session).id)
        assert model.kind == "bkt" and model.params("basics.tokens") == tokens
        assert model.prior("apps.rag") == BKTParams().p_init


def test_the_logistic_model_takes_degenerate_logs_without_nan() -> None:
    empty = ResponseLog(
        user=np.zeros(0, dtype=np.int64),
        skill=np.zeros(0, dtype=np.int64),
        correct=np.zeros(0, dtype=np.int8),
        item=np.zeros(0, dtype=np.int64),
        timestamp=np.zeros(0),
    )
    model = LogisticKT().fit(empty)
    assert model.predict_proba(empty).shape == (0,)
    assert model.predict_next(model.initial_state(), 3, 7, 0.0) == pytest.approx(0.5)
    one = ResponseLog(
        user=np.zeros(1, dtype=np.int64),
        skill=np.zeros(1, dtype=np.int64),
        correct=np.ones(1, dtype=np.int8),
        item=np.zeros(1, dtype=np.int64),
        timestamp=np.zeros(1),
    )
    model = LogisticKT().fit(one)
    state = model.update(model.initial_state(), 0, 1, 0, 0.0)
    for skill in (0, 5):  # seen, and never seen in training
        assert 0.0 < model.predict_next(state, skill, 0, 10.0) < 1.0
    with pytest.raises(ValueError, match="0 or 1"):
        model.update(state, 0, 2)
    with pytest.raises(ValueError, match="only 0 and 1"):
        ResponseLog(
            user=np.zeros(2, dtype=np.int64),
            skill=np.zeros(2, dtype=np.int64),
            correct=np.array([1, 2], dtype=np.int8),
        )


def test_predicted_success_follows_every_answer_under_the_logistic_model(ctx: AppContext) -> None:
    _simulate_log(ctx, learners=12, answers=20)
    fit_kt(ctx, model="logistic")
    learner = _learner(ctx, "p@example.org")
    skills = ["basics.tokens", "basics.prompts", "apps.rag"]
    with ctx.session() as session:
        fresh = predicted_success(
            session, load_model(session, default_organisation(session).id), learner.id, skills
        )
    assert all(0.0 < p < 1.0 for p in fresh.values())
    _answer_live(ctx, learner, 5, 2)
    with ctx.session() as session:
        model = load_model(session, default_organisation(session).id)
        rows = mastery_of(session, learner.id)
        now = predicted_success(session, model, learner.id, skills, {k: m.p_known for k, m in rows.items()})
        last = session.scalars(
            select(Response.skills).where(Response.user_id == learner.id).order_by(Response.id.desc())
        ).first()
    assert last is not None and all(math.isfinite(p) for p in now.values())
    for skill in last:  # the skills of the last answer: stored and live predictions agree
        assert now[skill] == pytest.approx(rows[skill].p_correct, abs=1e-12)
    fit_kt(ctx, model="bkt")
    with ctx.session() as session:
        model = load_model(session, default_organisation(session).id)
        rows = mastery_of(session, learner.id)
        bkt_now = predicted_success(
            session, model, learner.id, skills, {k: m.p_known for k, m in rows.items()}
        )
    assert bkt_now["basics.tokens"] == pytest.approx(
        model.predict("basics.tokens", rows["basics.tokens"].p_known)
    )


def test_the_practice_loop_reads_the_logistic_models_predictions(ctx: AppContext) -> None:
    from learnloop.services import guidance
    from learnloop.store.models import utcnow

    _simulate_log(ctx, learners=12, answers=20)
    learner = _learner(ctx, "loop@example.org")
    _answer_live(ctx, learner, 4, 2)
    for model_name, expect in (("logistic", True), ("bkt", False)):
        fit_kt(ctx, model=model_name)
        with ctx.session() as session:
            model = load_model(session, default_organisation(session).id)
            active = ctx.active_pack(session)
            state, _memory = guidance.learner_state(session, active, learner, model, utcnow())
            expected = predicted_success(session, model, learner.id, [s.id for s in active.pack.skills])
        assert bool(state.p_correct) is expect
        if expect:  # the policy sees exactly the model's predictions
            assert state.p_correct == pytest.approx(expected)


def test_the_policy_reads_stored_predictions_without_decoding_the_state(any_ctx: AppContext) -> None:
    from sqlalchemy import event

    from learnloop.store.db import get_engine

    ctx = any_ctx
    _simulate_log(ctx, learners=12, answers=20)
    fit_kt(ctx, model="logistic")
    learner = _learner(ctx, "stored@example.org")
    _answer_live(ctx, learner, 6, 2)
    skills = [s.id for s in PACK.skills]

    def from_state() -> tuple[dict | None, dict[str, float]]:
        with ctx.session() as session:
            row, model = (
                session.get(KTState, learner.id),
                load_model(session, default_organisation(session).id),
            )
            assert row is not None and model.tracer is not None
            last = session.scalar(select(func.max(Response.id)).where(Response.user_id == learner.id))
            assert row.predictions is not None and row.predictions["for"] == row.last_response_id == last
            expected = {
                s: model.tracer.predict_next(row.state, model.skill_codes[s])
                for s in skills
                if model.traces(s)
            }
            return row.predictions, expected

    stored, expected = from_state()
    statements: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = get_engine(ctx.settings.database_url)
    with ctx.session() as session:
        model = load_model(session, default_organisation(session).id)
        event.listen(engine, "before_cursor_execute", count)
        try:
            got = predicted_success(session, model, learner.id, skills)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert expected and {s: got[s] for s in expected} == pytest.approx(expected, abs=1e-12)
    assert any("kt_states.predictions" in s for s in statements)
    assert not any("kt_states.state" in s for s in statements)
    # a replay of the log stores the same predictions, once per learner
    with ctx.session() as session:
        rebuild_all(session)
    again, _ = from_state()
    assert again is not None and again["p"] == pytest.approx(stored["p"] if stored else [], abs=1e-12)


def test_model_choice_scores_each_answer_once_so_copied_rows_cannot_win(ctx: AppContext) -> None:
    """Every answer is a coin flip to a two-skill item, logged once per skill with the same label.
    Read row by row, the second row of an answer is a copy of the first (the learner's "last
    answer"), which the logistic model's features can read; scored once per answer, no model can
    do better than chance."""
    rng = np.random.default_rng(11)
    start = utcnow() - timedelta(days=10)
    with ctx.session() as session:
        org = auth.default_organisation(session)
        for u in range(40):
            user = auth.create_user(
                session,
                org_id=org.id,
                email=f"coin{u}@example.org",
                name=f"Coin {u}",
                password="tidal-ferry-quartz-81",
                password_hash="x",
                is_simulated=True,
            )
            for k in range(20):
                correct = bool(rng.random() < 0.5)
                session.add(
                    Response(
                        org_id=org.id,
                        user_id=user.id,
                        item_id="apps.rag.why",
                        skills=["apps.rag", "basics.prompts"],
                        kind="choice",
                        context="practice",
                        answer={"simulated": True},
                        correct=correct,
                        score=float(correct),
                        hints_used=0,
                        duration_ms=1000,
                        created_at=start + timedelta(minutes=10 * k),
                    )
                )
    summary = fit_kt(ctx)
    assert summary.held_out_auc["logistic"] is not None and summary.held_out_auc["bkt"] is not None
    assert summary.held_out_auc["logistic"] < 0.6
    assert summary.held_out_auc["bkt"] < 0.6
