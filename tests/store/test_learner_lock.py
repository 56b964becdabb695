"""The learner's lock is asked for once per transaction, and again in the next one."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine

from learnloop.services import auth
from learnloop.services.context import AppContext
from learnloop.store.guard import holds_learner_lock, lock_learner


def _learner(ctx: AppContext) -> int:
    with ctx.session() as session:
        org = auth.create_organisation(session, "Lock Org")
        user = auth.create_user(
            session,
            org_id=org.id,
            email="lock@lock.example",
            name="Lock",
            password="violet-harbour-57-lantern",
        )
        return user.id


def test_a_transaction_locks_a_learner_once(any_ctx: AppContext) -> None:
    ctx = any_ctx
    user_id = _learner(ctx)
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        with ctx.session() as session:
            assert not holds_learner_lock(session, user_id)
            lock_learner(session, user_id)
            assert holds_learner_lock(session, user_id) and not holds_learner_lock(session, user_id + 1)
            lock_learner(session, user_id)
            assert len(seen) == 1
            session.commit()  # the lock ends with the transaction: the next one asks again
            assert not holds_learner_lock(session, user_id)
            lock_learner(session, user_id)
            assert len(seen) == 2 and holds_learner_lock(session, user_id)
            nested = session.begin_nested()
            lock_learner(session, user_id)  # a savepoint asks again: rolling it back would release it
            nested.rollback()
            assert not holds_learner_lock(session, user_id + 1)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert sum("users" in s.lower() and ("update" in s.lower() or "for" in s.lower()) for s in seen) == 3
