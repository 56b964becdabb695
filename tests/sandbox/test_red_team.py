"""Red team: every attack on the code judge is graded wrong or refused, changes nothing on the
host, learns nothing secret, and leaves no process behind (bench/judge_attacks.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bench.judge_attacks import (
    ATTACKS,
    CASES,
    CORRECT,
    WRONG,
    Attack,
    Host,
    foreign_processes,
    left_behind,
    rss_mb,
)
from learnloop.sandbox.judge import Limits, Sandbox, SandboxBusy, Verdict

LIMITS = Limits(timeout_s=3, memory_mb=512)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    h = Host()
    yield h
    h.close()


def _shown(verdict: Verdict) -> str:
    return "\n".join(verdict.messages()) + verdict.stdout


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_contained(attack: Attack, sandbox: Sandbox, host: Host) -> None:
    host.reset()
    before = foreign_processes()
    memory = rss_mb()
    verdict = sandbox.run(host.source(attack), CASES, LIMITS)
    time.sleep(attack.settle_s)
    assert not verdict.correct, f"{attack.name} was graded correct"
    assert host.problems(_shown(verdict)) == []
    assert left_behind(before) == set(), f"{attack.name} left processes behind"
    assert rss_mb() - memory < 100, "the server's memory grew by more than 100 MB"
    # and the judge still works for the next learner
    assert sandbox.run(CORRECT, CASES, LIMITS).correct


def test_forty_submissions_at_once(sandbox: Sandbox, host: Host) -> None:
    host.reset()
    before = foreign_processes()
    sources = [CORRECT if i % 2 == 0 else WRONG for i in range(40)]
    results: list[object] = [None] * 40

    def submit(i: int) -> None:
        try:
            results[i] = sandbox.run(sources[i], CASES, LIMITS)
        except SandboxBusy as exc:
            results[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for i, result in enumerate(results):
        if isinstance(result, SandboxBusy):  # refused with a clear message: allowed, never wrong
            assert "submit again" in result.message
            continue
        assert isinstance(result, Verdict), result
        assert result.correct == (i % 2 == 0), (i, result.messages())
    assert left_behind(before) == set()


def test_a_full_queue_refuses_with_a_message(sandbox: Sandbox) -> None:
    tight = Sandbox(max_concurrent=1, queue_wait_s=0.2, slot_dir=str(sandbox.slot_dir) + "-tight")
    tight._availability = sandbox.availability()
    slow = "import time\ntime.sleep(2)\ndef add(a, b):\n    return a + b\n"
    outcome: list[object] = []
    runner = threading.Thread(target=lambda: outcome.append(tight.run(slow, CASES, LIMITS)))
    runner.start()
    time.sleep(0.5)
    with pytest.raises(SandboxBusy, match="submit again"):
        tight.run(CORRECT, CASES, LIMITS)
    runner.join()
    assert isinstance(outcome[0], Verdict) and outcome[0].correct
