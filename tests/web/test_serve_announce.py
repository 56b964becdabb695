"""`learnloop serve` prints its address only once the port is bound: a request made the moment
the line appears is answered."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import MINI_PACK


def test_the_address_is_printed_once_the_server_listens(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        LEARNLOOP_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        LEARNLOOP_DEFAULT_PACK=str(MINI_PACK),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "learnloop.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        deadline = time.time() + 120
        lines = []
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "is running at" in line:
                assert f"http://127.0.0.1:{port}/" in line
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as r:
                    assert r.status == 200
                return
        raise AssertionError("no address printed: " + "".join(lines))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
