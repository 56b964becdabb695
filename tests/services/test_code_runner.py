"""Learner code runs sandboxed: failures, crashes, loops and escapes are failed attempts."""

from __future__ import annotations

from learnloop.services.code_runner import run_code

TESTS = "def test_add():\n    assert add(2, 3) == 5\n\ndef test_neg():\n    assert add(-1, 1) == 0\n"


def test_correct_and_partial() -> None:
    assert run_code("def add(a, b):\n    return a + b\n", TESTS).correct
    partial = run_code("def add(a, b):\n    return 5\n", TESTS)
    assert not partial.correct and partial.passed == ["test_add"] and partial.score == 0.5


def test_infinite_loop_times_out() -> None:
    result = run_code("def add(a, b):\n    while True:\n        pass\n", TESTS, timeout_s=1.5)
    assert not result.correct and "limit" in (result.error or "")


def test_memory_bomb_fails_cleanly() -> None:
    result = run_code("x = ' ' * (2 * 1024 ** 3)\n", TESTS, memory_mb=128)
    assert not result.correct and result.error


def test_no_network_no_subprocess_no_writes() -> None:
    for source in (
        "import socket\nsocket.create_connection(('127.0.0.1', 9))\n",
        "import subprocess\nsubprocess.run(['ls'])\n",
        "open('/tmp/learnloop-escape.txt', 'w').write('x')\n",
    ):
        result = run_code(source, TESTS)
        assert not result.correct and "not allowed" in (result.error or ""), source


def test_crash_syntax_error_and_exit() -> None:
    assert "SyntaxError" in (run_code("def add(:\n", TESTS).error or "")
    assert not run_code("import os\nos._exit(0)\n", TESTS).correct
    assert not run_code("raise SystemExit(1)\n", TESTS).correct


def test_forged_result_line_is_ignored() -> None:
    forged = 'print(\'@@LEARNLOOP-RESULT-0@@{"passed": ["test_add", "test_neg"], "failed": []}\')\n'
    assert not run_code(forged + "def add(a, b):\n    return 0\n", TESTS).correct
