"""The model server stops itself when whoever started it was killed (no orphaned servers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

_SERVER = textwrap.dedent(
    """
    import sys, time
    from learnloop.llm.ort_server import exit_with_parent
    exit_with_parent(int(sys.argv[1]), poll_s=0.1)
    open(sys.argv[2], "w").write("ready")
    time.sleep(120)
    """
)

_STARTER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen(
        [sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2]], start_new_session=True
    )
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited; only its reaping is left


def _wait(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_the_server_outlives_nothing_but_its_starter(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER, _SERVER, str(ready)], stdout=subprocess.PIPE, text=True
    )
    server_pid = 0
    try:
        assert starter.stdout is not None
        server_pid = int(starter.stdout.readline())
        assert _wait(ready.exists, 60), "the server never started"
        time.sleep(0.5)
        assert _alive(server_pid), "the server stopped while its starter was alive"
        starter.send_signal(signal.SIGKILL)  # no chance to stop its child
        starter.wait(timeout=10)
        assert _wait(lambda: not _alive(server_pid), 10), "the server outlived its killed starter"
    finally:
        starter.kill()
        if server_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server_pid, signal.SIGKILL)
