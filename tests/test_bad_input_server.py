"""Bad input against a real ``learnloop serve`` process (issue 18, "Bad input"): each gets a clear
error and loses nothing.

- A client that sends an answer and closes its socket before the reply: the answer is stored
  whole or not at all, the rebuild check passes and the next ``next`` works.
- 1,000 concurrent logins with wrong passwords: 401 or 429 with the JSON error envelope, never a
  5xx; the server stays responsive, and the right password is then refused with 429 and
  ``Retry-After`` until the window ends, as the throttle documents (docs/operations.md).
- PostgreSQL unreachable for a moment during a stream of answers (connections refused and the
  live ones cut): those requests get 503 with a message, nothing is half-stored, and afterwards
  answers work again and the rebuild check passes.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from learnloop.store.models import Response
from tests.conftest import (
    MINI_PACK,
    POSTGRES_URL,
    _make_ctx,
    _postgres_database,
    answer_payload,
    http_learner,
    need,
)
from tests.test_durability import PACK, _env, _start


def _rebuild_check(url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "learnloop.cli", "rebuild", "--check"],
        capture_output=True,
        text=True,
        env=_env(url),
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "equals the live state" in done.stdout


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Path]]:
    """One server per backend for the module's tests (each uses its own learners)."""
    folder = tmp_path_factory.mktemp("bad_input")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{folder / 'test.db'}"
        else:
            if not POSTGRES_URL:
                need("no PostgreSQL server (set LEARNLOOP_TEST_POSTGRES_URL)")
            databases = _postgres_database()
            url = next(databases)
            stack.callback(lambda: next(databases, None))
        _make_ctx(url, MINI_PACK)
        log = folder / "server.log"
        process, base = _start(url, log)
        try:
            yield url, base, log
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def _answer_body(shown: dict[str, object], right: bool) -> dict[str, object]:
    item = PACK.item(str(shown["item"]["id"]))  # type: ignore[index]
    return {
        "item_id": item.id,
        "answer": answer_payload(item, right),
        "presentation_id": shown["presentation_id"],
    }


def _stored(url: str, presentation_id: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+pg8000://"))
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(Response)
                    .where(Response.presentation_id == presentation_id)
                )
                or 0
            )
    finally:
        engine.dispose()


def test_a_client_that_disconnects_mid_answer_loses_nothing(server: tuple[str, str, Path]) -> None:
    url, base, log = server
    headers = http_learner(base, "gone@example.org")
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(2):
            shown = client.get("/api/v1/practice/next")
            assert shown.status_code == 200, shown.text
            body = json.dumps(_answer_body(shown.json(), right=True)).encode()
            host, port = urlsplit(base).hostname, urlsplit(base).port
            with socket.create_connection((str(host), int(port or 80))) as raw:
                raw.sendall(
                    b"POST /api/v1/practice/answer HTTP/1.1\r\nHost: test\r\n"
                    + f"Authorization: {headers['Authorization']}\r\n".encode()
                    + b"Content-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            # closed before reading the reply: the answer is stored whole (once) or not at all
            time.sleep(1.0)
            first = shown.json()["presentation_id"]
            assert _stored(url, first) in (0, 1)
            again = client.get("/api/v1/practice/next")
            assert again.status_code == 200, again.text
            # not stored: the same item is still on screen, and answering it now works
            right = again.json()["presentation_id"] == first
            reply = client.post("/api/v1/practice/answer", json=_answer_body(again.json(), right=right))
            assert reply.status_code == 200, reply.text
            assert _stored(url, first) == 1  # either way, exactly once
    assert "Traceback" not in log.read_text()
    _rebuild_check(url)


def test_a_thousand_concurrent_wrong_logins(server: tuple[str, str, Path]) -> None:
    _, base, log = server
    password = "violet-harbour-57-lantern"
    http_learner(base, "target@example.org", password)

    async def storm() -> list[httpx.Response]:
        limit = asyncio.Semaphore(50)
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:

            async def one(i: int) -> httpx.Response:
                async with limit:
                    return await client.post(
                        "/api/v1/auth/login", json={"email": "target@example.org", "password": f"wrong-{i}"}
                    )

            return await asyncio.gather(*(one(i) for i in range(1000)))

    replies = asyncio.run(storm())
    statuses = {r.status_code for r in replies}
    assert statuses <= {401, 429}, statuses
    assert 429 in statuses
    for r in replies:
        error = r.json()["error"]
        assert error["code"] in ("unauthorized", "rate_limited") and error["message"], r.text
    # responsive: a health check and another account's login answer at once
    assert httpx.get(f"{base}/api/v1/health", timeout=10).status_code == 200
    other = httpx.post(
        f"{base}/api/v1/auth/signup",
        json={"email": "other@example.org", "name": "Bo", "password": password},
        timeout=60,
    )
    assert other.status_code == 201, other.text
    # the right password during the window: refused like the wrong ones, with Retry-After
    right = httpx.post(
        f"{base}/api/v1/auth/login", json={"email": "target@example.org", "password": password}, timeout=60
    )
    assert right.status_code == 429, right.text
    assert right.json()["error"]["code"] == "rate_limited" and int(right.headers["Retry-After"]) > 0
    assert "Traceback" not in log.read_text()


def _admin(url: str) -> tuple[Engine, str]:
    base, name = url.rsplit("/", 1)
    return create_engine(
        f"{base.replace('postgresql://', 'postgresql+pg8000://')}/postgres", isolation_level="AUTOCOMMIT"
    ), name


def test_a_database_briefly_unreachable_gives_503_and_loses_nothing(
    server: tuple[str, str, Path],
) -> None:
    url, base, log = server
    if not url.startswith("postgresql"):
        pytest.skip("the outage is a PostgreSQL one (connections refused and cut)")
    learners = [http_learner(base, f"s{i}@example.org") for i in range(3)]
    admin, name = _admin(url)
    acked: list[int] = []
    unavailable: list[str] = []
    stop = threading.Event()

    def stream(headers: dict[str, str], seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                shown = client.get("/api/v1/practice/next")
                if shown.status_code == 503:
                    unavailable.append(shown.json()["error"]["message"])
                    time.sleep(0.05)
                    continue
                assert shown.status_code == 200, shown.text
                reply = client.post(
                    "/api/v1/practice/answer", json=_answer_body(shown.json(), rng.random() < 0.7)
                )
                if reply.status_code == 503:
                    unavailable.append(reply.json()["error"]["message"])
                    continue
                assert reply.status_code == 200, reply.text
                acked.append(int(reply.json()["response_id"]))

    threads = [threading.Thread(target=stream, args=(h, i)) for i, h in enumerate(learners)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(acked) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert acked, f"no answer went through: {log.read_text()[-2000:]}"
        with admin.connect() as conn:
            # the outage: no new connections, and the live ones cut, for about two seconds
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            until = time.monotonic() + 2.0
            while time.monotonic() < until:
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                    {"d": name},
                )
                time.sleep(0.2)
            during = len(acked)
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        deadline = time.monotonic() + 60
        while len(acked) < during + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(acked) >= during + 5, "answers did not work again after the outage"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert unavailable, "no request met the outage"
    assert all("nothing was saved" in m for m in unavailable), unavailable[:3]
    engine = create_engine(url.replace("postgresql://", "postgresql+pg8000://"))
    with engine.connect() as conn:
        stored = set(conn.scalars(select(Response.id)))
    engine.dispose()
    assert set(acked) <= stored  # every acknowledged answer is there
    _rebuild_check(url)
