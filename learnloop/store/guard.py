"""What the database can store, checked once for every statement, and the per-learner lock.

Every value a statement binds passes :func:`check_value` before it reaches the driver, so
input the database would refuse (PostgreSQL keeps no NUL character in text and its integers
are 32-bit, SQLite's 64-bit; neither encodes a lone UTF-16 surrogate) is a clear
``InvalidInput`` (HTTP 422, CLI exit 2) on whichever route or command it arrives, and the same
on both backends, instead of a driver error halfway through a transaction.

:func:`lock_learner` serialises the writes that fold one learner's answers into derived state
(the pending item, the response log, mastery, knowledge-tracing state, review cards) across
threads *and* worker processes: a row lock on the learner on PostgreSQL, the database's one
write lock on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session

from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.store.models import User

#: the largest integer a column holds: PostgreSQL ``integer`` is 32-bit, SQLite's is 64-bit
INT_LIMITS = {"postgresql": 2**31 - 1, "sqlite": 2**63 - 1}


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a NUL character, a lone surrogate), or None."""
    if "\x00" in value:
        return _("The text contains a NUL character (\\0), which cannot be stored.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _("The text is not valid Unicode (it contains a lone surrogate).")
    return None


def check_value(value: object, int_limit: int) -> None:
    """Raise ``InvalidInput`` for a bound value the database cannot store."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise InvalidInput(problem)
    elif isinstance(value, int) and not isinstance(value, bool) and not -int_limit - 1 <= value <= int_limit:
        raise InvalidInput(
            _("The number %(value)s is out of range (at most %(limit)d).")
            % {"value": _shorten(value), "limit": int_limit}
        )


def _shorten(value: int) -> str:
    """A huge number as "about 10^400" rather than its 400 digits."""
    magnitude = len(str(abs(value))) - 1 if abs(value) < 10**4000 else None
    if magnitude is None or magnitude > 30:
        return f"{'-' if value < 0 else ''}~10^{magnitude if magnitude is not None else '4000+'}"
    return str(value)


def _values(parameters: object) -> Iterable[object]:
    if isinstance(parameters, Mapping):
        return parameters.values()
    if isinstance(parameters, list | tuple):
        return parameters
    return ()


def install(engine: Engine) -> None:
    """Check the bound values of every statement ``engine`` runs."""
    limit = INT_LIMITS.get(engine.dialect.name, 2**63 - 1)

    @event.listens_for(engine, "before_cursor_execute")
    def _check(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        rows = parameters if executemany else [parameters]
        for row in rows or ():
            for value in _values(row):
                check_value(value, limit)


#: Session.info key: (the transaction, the learners whose lock it holds)
_HELD = "learnloop.learner_locks"


def _transaction(session: Session) -> object:
    """The innermost transaction now (a savepoint rolled back releases the locks taken in it)."""
    return session.get_nested_transaction() or session.get_transaction()


def holds_learner_lock(session: Session, user_id: int) -> bool:
    """Whether this session's current transaction took the learner's lock (:func:`lock_learner`)
    already: then what it read since is current."""
    held = session.info.get(_HELD)
    return held is not None and held[0] is _transaction(session) and user_id in held[1]


def lock_learner(session: Session, user_id: int) -> None:
    """Hold the learner's write lock until the session's transaction ends.

    PostgreSQL: ``SELECT ... FOR NO KEY UPDATE`` on the learner's row (rows that reference the
    learner can still be inserted by others). SQLite: a no-op write, which takes the database's
    write lock at once, so everything read after it is current and stays so until commit.
    Call it before reading what the transaction will write from. A transaction that holds the
    lock already does not ask again (one statement fewer on the practice loop's paths).
    """
    if holds_learner_lock(session, user_id):
        return
    if session.get_bind().dialect.name == "sqlite":
        session.connection().execute(text("UPDATE users SET id = id WHERE id = :u"), {"u": user_id})
    else:
        session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))
    held: tuple[object, set[int]] | None = session.info.get(_HELD)
    transaction = _transaction(session)
    if held is None or held[0] is not transaction:
        held = session.info[_HELD] = (transaction, set())
    held[1].add(user_id)
