"""The PostgreSQL pools keep as many connections as a process's request threads use at once
(issue 18): a connection beyond the kept ones is closed when given back, so every burst would
open new ones (a TCP and TLS handshake, a login and a server process each)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import event, text

from learnloop.config import Settings
from learnloop.store import db
from tests.conftest import POSTGRES_URL, _postgres_database, need


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not POSTGRES_URL:
        need("no PostgreSQL server (set LEARNLOOP_TEST_POSTGRES_URL)")
    yield from _postgres_database()


def test_a_burst_of_every_request_thread_reuses_the_pools_connections(pg_url: str) -> None:
    most = int(Settings.model_fields["request_threads"].metadata[-1].le)
    assert most < db.POOL_SIZE  # the request threads and the job worker's
    for engine in (db.get_engine(pg_url), db._autocommit_engine(pg_url)):
        assert engine is not None
        engine.dispose()
        opened: list[object] = []
        event.listen(engine, "connect", lambda conn, _record, opened=opened: opened.append(conn))
        for burst in range(2):
            with ExitStack() as stack:
                conns = [stack.enter_context(engine.connect()) for _ in range(most)]
                assert all(c.execute(text("SELECT 1")).scalar() == 1 for c in conns)
            assert len(opened) == most, f"burst {burst}: {len(opened)} connections opened"
        engine.dispose()
