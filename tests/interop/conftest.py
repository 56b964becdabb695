"""Real counterparts of the standards tests: Ralph, an xAPI learning record store (its own
virtual environment, .venv-ralph, installed by scripts/_ralph.sh from scripts/test.sh)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, need


@dataclass(frozen=True)
class Lrs:
    endpoint: str  # the xAPI base, ending in /xAPI/
    username: str
    password: str

    def get(self, **params: str) -> httpx.Response:
        return httpx.get(
            self.endpoint + "statements",
            params=params,
            auth=(self.username, self.password),
            headers={"X-Experience-API-Version": "1.0.3"},
            timeout=10,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ralph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lrs]:
    """Ralph 5.1 with its file-system backend on a free loopback port, for the whole session."""
    venv = Path(os.environ.get("LEARNLOOP_TEST_RALPH", ROOT / ".venv-ralph"))
    if not (venv / "bin" / "ralph").exists():
        need("Ralph (xAPI LRS) is not installed: run scripts/_ralph.sh (scripts/test.sh does)")
    home = tmp_path_factory.mktemp("ralph")
    (home / "data").mkdir()
    env = {
        **os.environ,
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_APP_DIR": str(home / "app"),
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(home / "data"),
    }
    user, password = "learnloop-test", "ralph-" + os.urandom(8).hex()
    subprocess.run(
        [str(venv / "bin" / "ralph"), "auth", "-u", user, "-p", password, "-s", "all", "-M",
         "mailto:lrs@example.org", "-w"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    log = open(home / "ralph.log", "wb")  # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen(
        [str(venv / "bin" / "python"), str(Path(__file__).with_name("ralph_server.py")), str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/__heartbeat__", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Ralph did not start: " + (home / "ralph.log").read_text()[-2000:])
            time.sleep(0.3)
        yield Lrs(endpoint=base + "/xAPI/", username=user, password=password)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def cli(ctx, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``learnloop`` commands in this process against the ``ctx`` database (mini pack)."""
    from typer.testing import CliRunner

    from learnloop.cli import app
    from learnloop.config import get_settings

    monkeypatch.setenv("LEARNLOOP_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("LEARNLOOP_DEFAULT_PACK", str(ctx.settings.default_pack))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(args: list[str]):  # type: ignore[no-untyped-def]
        return runner.invoke(app, args, catch_exceptions=False)

    yield run
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def peers() -> Path:
    """The test-only environment of independent implementations (openbadgeslib, Citolab's
    qti-convert), installed by scripts/_interop_peers.sh; its python runs our check scripts."""
    venv = Path(os.environ.get("LEARNLOOP_TEST_INTEROP_PEERS", ROOT / ".venv-interop"))
    python = venv / "bin" / "python"
    if not python.exists():
        need("the interop peers are not installed: run scripts/_interop_peers.sh (scripts/test.sh does)")
    return python
