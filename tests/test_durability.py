"""Durability: ``kill -9`` of a real ``learnloop serve`` during a stream of answers loses no
acknowledged answer, and the derived state still equals a replay of the log.

Each round starts the server as its own process on the same database, lets learners stream
next → answer through the API, and kills the server with SIGKILL at a random moment while
answers are in flight. An answer is acknowledged when its HTTP 200 (with the stored response's
id) reached the client; every acknowledged answer must be in the log afterwards, and
``learnloop rebuild --check`` must pass. Answers in flight at the kill may or may not be stored;
either is fine, as long as the database stays consistent.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from learnloop.content.loader import load_pack
from learnloop.store.models import Response, User
from tests.conftest import MINI_PACK, _make_ctx, answer_payload, http_learner

PACK = load_pack(MINI_PACK)
ROUNDS = 4
LEARNERS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "LEARNLOOP_DATABASE_URL": url,
        "LEARNLOOP_DEFAULT_PACK": str(MINI_PACK),
        "LEARNLOOP_LLM_WARM_UP": "false",
        "LEARNLOOP_CODE_ATTEMPTS": "1",
    }


def _start(url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "learnloop.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(url),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, f"the server exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "the server did not start"
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def _stream(
    base: str, headers: dict[str, str], email: str, acked: list[tuple[str, int, str]], seed: int
) -> None:
    """next → answer until the server goes away; every 200 is recorded as acknowledged."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        while True:
            try:
                shown = client.get("/api/v1/practice/next")
                assert shown.status_code < 500, shown.text
                if shown.status_code != 200:
                    return
                item = PACK.item(shown.json()["item"]["id"])
                body = {
                    "item_id": item.id,
                    "answer": answer_payload(item, rng.random() < 0.7),
                    "presentation_id": shown.json()["presentation_id"],
                }
                reply = client.post("/api/v1/practice/answer", json=body)
            except httpx.TransportError:
                return  # the server was killed
            assert reply.status_code < 500, reply.text
            if reply.status_code == 200:
                acked.append((email, reply.json()["response_id"], item.id))


def test_kill_9_loses_no_acknowledged_answer(db_url: str, tmp_path: Path) -> None:
    ctx = _make_ctx(db_url, MINI_PACK)
    log = tmp_path / "server.log"
    rng = random.Random(11)
    acked: list[tuple[str, int, str]] = []
    learners: dict[str, dict[str, str]] = {}
    kills = 0
    for round_ in range(ROUNDS):
        process, base = _start(db_url, log)
        threads: list[threading.Thread] = []
        try:
            if not learners:
                learners = {
                    f"l{i}@example.org": http_learner(base, f"l{i}@example.org") for i in range(LEARNERS)
                }
            before = len(acked)
            threads = [
                threading.Thread(target=_stream, args=(base, h, email, acked, round_ * 100 + i))
                for i, (email, h) in enumerate(learners.items())
            ]
            for thread in threads:
                thread.start()
            # kill mid-stream: once answers are flowing, after a random further delay
            deadline = time.monotonic() + 60
            while len(acked) - before < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(acked) > before, f"no answer was acknowledged: {log.read_text()[-2000:]}"
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        kills += 1
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()

    assert kills == ROUNDS
    with ctx.session() as session:
        emails = dict(session.execute(select(User.email, User.id)).all())
        stored = {
            (user_id, response_id): item_id
            for response_id, user_id, item_id in session.execute(
                select(Response.id, Response.user_id, Response.item_id)
            )
        }
    lost = [a for a in acked if stored.get((emails[a[0]], a[1])) != a[2]]
    print(f"{kills} kills, {len(acked)} acknowledged answers, {len(stored)} stored")
    assert len(acked) >= ROUNDS * 5
    assert lost == [], f"{len(lost)} of {len(acked)} acknowledged answers lost: {lost[:5]}"

    done = subprocess.run(
        [sys.executable, "-m", "learnloop.cli", "rebuild", "--check"],
        capture_output=True,
        text=True,
        env=_env(db_url),
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "equals the live state" in done.stdout
