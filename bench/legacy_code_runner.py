"""The code runner Learnloop used before its sandbox (kept only as the baseline of bench/judge.py).

It ran learner code in a child interpreter guarded by an audit hook, in the same process as the
tests; issue 12 showed it escapable and forgeable. Do not use it to grade anything.

The child is a fresh interpreter in isolated mode (``-I``) in an empty temporary folder,
with CPU, memory, file-size and process limits (``resource.setrlimit``), a wall-clock
timeout, an empty environment, and an audit hook that refuses sockets, subprocesses and
file writes outside its folder. Where ``unshare`` can make a network namespace, the child
also gets no network device at all. A crash, a timeout or a memory blow-up is a failed
attempt with a message, never an error of the server.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

MAX_OUTPUT = 20_000

# Runs inside the child. Reads code and tests from files, runs every test_* function and
# prints one JSON line after a random marker so stray prints cannot be taken for results.
_HARNESS = r"""
import json, sys, traceback
marker, workdir = sys.argv[1], sys.argv[2]

def _guard(event, args):
    if event.startswith(("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn",
                         "os.fork", "os.spawn", "ctypes.", "os.kill")):
        raise PermissionError(f"{event} is not allowed in exercises")
    if event == "open" and args and isinstance(args[0], str) and len(args) > 1:
        mode = args[1] if isinstance(args[1], str) else ""
        if any(m in mode for m in "wax+") and not args[0].startswith(workdir):
            raise PermissionError("writing files is not allowed in exercises")

source = open(workdir + "/solution.py", encoding="utf-8").read()
tests = open(workdir + "/tests.py", encoding="utf-8").read()
sys.addaudithook(_guard)
result = {"passed": [], "failed": [], "error": None}
namespace = {"__name__": "solution"}
try:
    exec(compile(source, "solution.py", "exec"), namespace)
except BaseException as exc:
    result["error"] = "Your code raised " + type(exc).__name__ + ": " + str(exc)[:500]
else:
    try:
        exec(compile(tests, "tests.py", "exec"), namespace)
    except BaseException as exc:
        result["error"] = "The tests could not load: " + type(exc).__name__ + ": " + str(exc)[:300]
    else:
        for name in sorted(n for n in list(namespace) if n.startswith("test_") and callable(namespace[n])):
            try:
                namespace[name]()
                result["passed"].append(name)
            except AssertionError as exc:
                result["failed"].append({"test": name, "message": ("assertion failed: " + str(exc))[:300]})
            except BaseException as exc:
                result["failed"].append({"test": name, "message": (type(exc).__name__ + ": " + str(exc))[:300]})
sys.stdout.write("\n" + marker + json.dumps(result) + "\n")
sys.stdout.flush()
"""


@dataclass
class CodeResult:
    passed: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    timed_out: bool = False
    stdout: str = ""

    @property
    def correct(self) -> bool:
        return self.error is None and not self.failed and bool(self.passed)

    @property
    def score(self) -> float:
        total = len(self.passed) + len(self.failed)
        return len(self.passed) / total if total and self.error is None else 0.0

    def messages(self) -> list[str]:
        if self.error:
            return [self.error]
        out = [f"{len(self.passed)} of {len(self.passed) + len(self.failed)} tests passed."]
        out += [f"{f['test']}: {f['message']}" for f in self.failed]
        return out


@lru_cache(maxsize=1)
def _can_unshare_network() -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        done = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _limits(cpu_seconds: int, memory_mb: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()

    return apply


def run_code(source: str, tests: str, *, timeout_s: float = 5.0, memory_mb: int = 256) -> CodeResult:
    """Run ``source`` then ``tests`` (``test_*`` functions) in a sandboxed child interpreter."""
    marker = "@@LEARNLOOP-RESULT-" + secrets.token_hex(16) + "@@"
    with tempfile.TemporaryDirectory(prefix="learnloop-code-") as workdir:
        Path(workdir, "solution.py").write_text(source, encoding="utf-8")
        Path(workdir, "tests.py").write_text(tests, encoding="utf-8")
        Path(workdir, "harness.py").write_text(_HARNESS, encoding="utf-8")
        cmd = [sys.executable, "-I", "-S", "harness.py", marker, workdir]
        if _can_unshare_network():
            cmd = ["unshare", "-rn", *cmd]
        try:
            done = subprocess.run(
                cmd,
                cwd=workdir,
                env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8", "PYTHONHASHSEED": "0"},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                preexec_fn=_limits(max(1, int(timeout_s)), memory_mb),  # noqa: PLW1509
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"")[:MAX_OUTPUT].decode("utf-8", "replace")
            return CodeResult(
                error=f"Time limit exceeded ({timeout_s:g} s): is there an infinite loop?",
                timed_out=True,
                stdout=out,
            )
    stdout = done.stdout.decode("utf-8", "replace")
    head, sep, tail = stdout.rpartition(marker)
    if not sep:
        stderr = done.stderr.decode("utf-8", "replace")
        if "MemoryError" in stderr or done.returncode in (-9,):
            reason = f"Memory limit exceeded ({memory_mb} MB)."
        elif done.returncode in (-24, -signal_number("SIGXCPU")):
            reason = "CPU time limit exceeded: is there an infinite loop?"
        else:
            last = stderr.strip().splitlines()[-1:] or ["no output"]
            reason = f"Your program stopped unexpectedly (exit code {done.returncode}): {last[0][:300]}"
        return CodeResult(error=reason, stdout=head[:MAX_OUTPUT])
    try:
        result = json.loads(tail.strip().splitlines()[0])
    except (json.JSONDecodeError, IndexError):
        return CodeResult(error="The test harness output was unreadable.", stdout=head[:MAX_OUTPUT])
    return CodeResult(
        passed=list(result.get("passed", [])),
        failed=list(result.get("failed", [])),
        error=result.get("error"),
        stdout=head[:MAX_OUTPUT],
    )


def signal_number(name: str) -> int:
    import signal

    return int(getattr(signal, name, 24))
