"""The code judge: a learner's submission runs in a bubblewrap sandbox, the verdict is made here.

Isolation (see docs/operations.md, "The code sandbox"):

- the submission runs under ``bwrap`` in new user, PID, network, IPC, UTS and cgroup
  namespaces, as an unprivileged user (``learnloop-sandbox`` when the server is root; the
  server's own user, mapped to ``nobody`` in a user namespace, otherwise);
- its filesystem is ``/usr`` read-only (the operating system's Python, NumPy and pandas),
  ``/proc`` of its own PID namespace, a minimal ``/dev`` and two small fresh tmpfs folders
  (``/work``, ``/tmp``): none of the server's files, database, sockets or environment;
- the runner sets CPU, memory, file-size, process and open-file limits before the submission
  loads; the judge adds a wall-clock deadline, caps every line it reads and kills the whole
  sandbox (its PID namespace dies with it) when the run ends, however it ends;
- at most ``code_max_concurrent`` submissions run at once across all server processes (file
  locks); the others wait up to ``code_queue_wait_s`` and are then turned away with a message.

The submission never sees an expected value: the judge sends one case at a time (setup and
call), the runner answers with an exactly-typed description of the returned value, and the
comparison (``values.matches``) happens in this process. Where isolation is not available,
:func:`availability` says why and code items are turned off; nothing is ever run without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import pwd
import random
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from learnloop.content.models import CodeCase
from learnloop.errors import Unavailable
from learnloop.i18n import _
from learnloop.sandbox import values

RUNNER = (Path(__file__).parent / "runner.py").read_text(encoding="utf-8")
SANDBOX_USER = "learnloop-sandbox"
MAX_LINE = 1_000_000
MAX_STDOUT_SHOWN = 2_000


class SandboxBusy(Unavailable):
    """Every sandbox slot stayed taken for the whole queue wait."""

    code = "sandbox_busy"


class SandboxUnavailable(Unavailable):
    """This server cannot isolate code, so code items are off."""

    code = "sandbox_unavailable"


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_mb: int = 512
    processes: int = 16
    file_bytes: int = 1_000_000
    tmp_mb: int = 16


@dataclass
class CaseOutcome:
    name: str
    public: bool
    passed: bool
    #: what the learner may see of a failed public case (empty for hidden ones)
    detail: str = ""


@dataclass
class Verdict:
    cases: list[CaseOutcome] = field(default_factory=list)
    #: why the submission could not be judged case by case (syntax error, time limit...)
    error: str | None = None
    timed_out: bool = False
    #: what the submission printed while loading (capped)
    stdout: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def correct(self) -> bool:
        return self.error is None and bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def score(self) -> float:
        return self.passed / len(self.cases) if self.cases and self.error is None else 0.0

    def messages(self) -> list[str]:
        if self.error:
            return [self.error]
        out = [_("{passed} of {total} checks passed.").format(passed=self.passed, total=len(self.cases))]
        hidden_failed = sum(1 for c in self.cases if not c.passed and not c.public)
        out += [c.detail for c in self.cases if not c.passed and c.public]
        if hidden_failed:
            out.append(
                _("Hidden checks failed: {count}. Test the edge cases the stem describes.").format(
                    count=hidden_failed
                )
            )
        return out


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""
    #: how the submission is isolated, for `learnloop sandbox check`
    detail: str = ""
    numpy: bool = False
    pandas: bool = False


class Sandbox:
    """Runs submissions with bubblewrap; one per server process (see :func:`get_sandbox`)."""

    def __init__(
        self,
        *,
        python: str = "/usr/bin/python3",
        user: str = SANDBOX_USER,
        max_concurrent: int = 2,
        queue_wait_s: float = 20.0,
        slot_dir: str | None = None,
        bwrap: str | None = None,
    ) -> None:
        self.python = python
        self.user = user
        self.max_concurrent = max(1, max_concurrent)
        self.queue_wait_s = queue_wait_s
        self.slot_dir = Path(slot_dir or Path(tempfile.gettempdir()) / f"learnloop-judge-{os.geteuid()}")
        self.bwrap = bwrap or shutil.which("bwrap") or "/usr/bin/bwrap"
        self._availability: Availability | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    # --- isolation ------------------------------------------------------------------------

    def _account(self) -> pwd.struct_passwd | None:
        """The unprivileged account submissions run as, when the server can switch to it."""
        if os.geteuid() != 0:
            return None
        return pwd.getpwnam(self.user)

    def command(self, limits: Limits) -> list[str]:
        tmp = str(limits.tmp_mb * 1024 * 1024)
        cmd = [
            self.bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--as-pid-1",
            "--clearenv",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
            "--uid",
            "65534",
            "--gid",
            "65534",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for link in ("bin", "lib", "lib64", "sbin"):
            if Path("/usr", link).exists() and Path("/", link).is_symlink():
                cmd += ["--symlink", f"usr/{link}", f"/{link}"]
            elif Path("/", link).is_dir():
                cmd += ["--ro-bind", f"/{link}", f"/{link}"]
        # Debian's shared-library alternatives (NumPy's BLAS) and the loader's cache: links only.
        cmd += ["--ro-bind-try", "/etc/alternatives", "/etc/alternatives"]
        cmd += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        cmd += ["--proc", "/proc", "--dev", "/dev"]
        cmd += ["--size", tmp, "--tmpfs", "/tmp", "--size", tmp, "--tmpfs", "/work", "--chdir", "/work"]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": "/work",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLCONFIGDIR": "/tmp",
        }
        for key, value in env.items():
            cmd += ["--setenv", key, value]
        return [*cmd, "--", self.python, "-I", "-c", RUNNER]

    def availability(self, *, refresh: bool = False) -> Availability:
        """Whether submissions can be isolated here (probed once, then every minute while not)."""
        with self._lock:
            fresh = self._availability is not None and (
                self._availability.ok or time.monotonic() - self._checked_at < 60
            )
            if fresh and not refresh:
                assert self._availability is not None
                return self._availability
            self._availability = self._probe()
            self._checked_at = time.monotonic()
            return self._availability

    def _probe(self) -> Availability:
        if not Path(self.bwrap).exists():
            return Availability(False, _("bubblewrap (bwrap) is not installed."))
        if not Path(self.python).exists():
            return Availability(
                False, _("The sandbox's Python ({path}) is missing.").format(path=self.python)
            )
        try:
            self._account()
        except KeyError:
            return Availability(
                False,
                _("The user {user} does not exist: run `learnloop sandbox setup` as root.").format(
                    user=self.user
                ),
            )
        probe = [
            CodeCase(name="python", call="sys.version_info[:2] >= (3, 9)", expect=True, public=True),
            CodeCase(name="numpy", call="has('numpy')", expect=True),
            CodeCase(name="pandas", call="has('pandas')", expect=True),
        ]
        source = (
            "import sys, importlib\n"
            "def has(name):\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except Exception:\n"
            "        return False\n"
            "    return True\n"
        )
        try:
            verdict = self._run(source, probe, Limits(timeout_s=20, memory_mb=1024), probing=True)
        except OSError as exc:
            return Availability(False, _("The sandbox could not start: {error}").format(error=exc))
        if verdict.error or not verdict.cases or not verdict.cases[0].passed:
            return Availability(
                False,
                _("The sandbox could not start: {error}").format(
                    error=verdict.error or verdict.stdout or "?"
                ),
            )
        who = (
            _("user {user}").format(user=self.user)
            if os.geteuid() == 0
            else _("the server's user, mapped to nobody in a user namespace")
        )
        return Availability(
            True,
            detail=_("bubblewrap {bwrap}, {python}, as {who}").format(
                bwrap=self.bwrap, python=self.python, who=who
            ),
            numpy=verdict.cases[1].passed,
            pandas=verdict.cases[2].passed,
        )

    # --- running --------------------------------------------------------------------------

    def run(self, source: str, cases: Sequence[CodeCase], limits: Limits) -> Verdict:
        """Judge ``source`` against ``cases``; raises when the sandbox is off or full."""
        state = self.availability()
        if not state.ok:
            raise SandboxUnavailable(
                _("Code exercises are turned off on this server: {reason}").format(reason=state.reason)
            )
        with self._slot():
            return self._run(source, cases, limits)

    def _slot(self) -> _Slot:
        return _Slot(self.slot_dir, self.max_concurrent, self.queue_wait_s)

    def _run(
        self, source: str, cases: Sequence[CodeCase], limits: Limits, *, probing: bool = False
    ) -> Verdict:
        started = time.monotonic()
        deadline = started + limits.timeout_s
        account = self._account()
        extra: dict[str, Any] = {}
        if account is not None:
            extra = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        info_read, info_write = os.pipe()  # bwrap says there the PID of the sandbox's init
        command = self.command(limits)
        command[1:1] = ["--info-fd", str(info_write)]
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(  # noqa: S603 - a fixed command, the submission goes over stdin
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    cwd="/",
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    start_new_session=True,
                    pass_fds=(info_write,),
                    **extra,
                )
            except BaseException:
                os.close(info_read)
                raise
            finally:
                os.close(info_write)
            channel = _Channel(proc)
            try:
                verdict = self._converse(channel, source, cases, limits, deadline)
            finally:
                _kill(proc, info_read)
                channel.close()
            if verdict.error == _STARTUP:
                errors.seek(0)
                said = errors.read(2000).decode("utf-8", "replace").strip()
                verdict.error = said if probing and said else _("The sandbox did not start.")
        verdict.seconds = time.monotonic() - started
        return verdict

    def _converse(
        self, channel: _Channel, source: str, cases: Sequence[CodeCase], limits: Limits, deadline: float
    ) -> Verdict:
        cpu = max(1, math.ceil(limits.timeout_s))
        first = {
            "source": source,
            "limits": {
                "cpu_s": cpu,
                "memory_mb": limits.memory_mb,
                "processes": limits.processes,
                "file_bytes": limits.file_bytes,
            },
        }
        if not channel.send(first):
            return Verdict(error=_STARTUP)
        reply = channel.receive(deadline)
        if reply is _TIMEOUT:
            return _time_limit(limits)
        if not isinstance(reply, dict):
            return Verdict(error=_stopped(reply))
        printed = str(reply.get("stdout", ""))[:MAX_STDOUT_SHOWN]
        if "error" in reply:
            return Verdict(error=_load_error(reply.get("error")), stdout=printed)
        if reply.get("loaded") is not True:
            return Verdict(error=_stopped(None), stdout=printed)
        verdict = Verdict(stdout=printed)
        for case in cases:
            nonce = secrets.token_hex(8)
            if not channel.send({"id": nonce, "setup": case.setup or "", "call": case.call}):
                verdict.error = _stopped(None)
                break
            reply = channel.receive(deadline)
            if reply is _TIMEOUT:
                timed = _time_limit(limits)
                timed.cases, timed.stdout = verdict.cases, verdict.stdout
                return timed
            if not isinstance(reply, dict) or reply.get("id") != nonce:
                verdict.error = _stopped(reply)
                break
            verdict.cases.append(_outcome(case, reply))
        return verdict


# --- the conversation with the runner ---------------------------------------------------------

_TIMEOUT = object()
_STARTUP = "\x00startup"


class _Channel:
    """JSON lines to and from the runner, with a deadline and a cap on every line."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.stdin: IO[bytes] = proc.stdin
        self.stdout_fd = proc.stdout.fileno()
        os.set_blocking(self.stdout_fd, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.stdout_fd, selectors.EVENT_READ)
        self.buffer = b""
        self.eof = False

    def send(self, message: dict[str, Any]) -> bool:
        try:
            self.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
            self.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def receive(self, deadline: float) -> Any:
        """The next line as JSON; ``_TIMEOUT``; or a reason string when the runner broke off."""
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                return "too_large"
            if self.eof:
                return "eof"
            left = deadline - time.monotonic()
            if left <= 0:
                return _TIMEOUT
            if not self.selector.select(timeout=left):
                continue
            try:
                chunk = os.read(self.stdout_fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self.eof = True
            self.buffer += chunk
        line, _sep, self.buffer = self.buffer.partition(b"\n")
        try:
            return json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return "garbled"

    def close(self) -> None:
        self.selector.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def _kill(proc: subprocess.Popen[bytes], info_fd: int) -> None:
    """End the sandbox and wait until nothing of it is left.

    Killing the init of the sandbox's PID namespace makes the kernel kill every process in it
    (detached, daemonised or not) before that init is gone; we wait for that, then for bwrap."""
    init = 0
    try:
        os.set_blocking(info_fd, False)
        with contextlib.suppress(BlockingIOError, ValueError, OSError):
            init = int(json.loads(os.read(info_fd, 4096).decode("utf-8")).get("child-pid", 0))
    finally:
        os.close(info_fd)
    if init > 1:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(init, signal.SIGKILL)
        # bwrap, the init's parent, reaps it and exits (an orphaned init would stay a zombie)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
    for target in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    if init > 1:
        give_up = time.monotonic() + 5
        while _alive(init) and time.monotonic() < give_up:
            time.sleep(0.002)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has finished: its namespace is already empty)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


class _Slot:
    """One of ``size`` run slots shared by every server process (an flock'd file each)."""

    def __init__(self, directory: Path, size: int, wait_s: float):
        self.directory, self.size, self.wait_s = directory, size, wait_s
        self.handle: IO[str] | None = None

    def __enter__(self) -> _Slot:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_s
        order = list(range(self.size))
        while True:
            random.shuffle(order)
            for i in order:
                handle = open(self.directory / f"slot-{i}", "a+")  # noqa: SIM115 - held until __exit__
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                self.handle = handle
                return self
            if time.monotonic() >= deadline:
                raise SandboxBusy(
                    _("Too many code submissions are running right now; submit again in a moment.")
                )
            time.sleep(0.02 + random.random() * 0.05)

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


# --- verdicts ---------------------------------------------------------------------------------


def _outcome(case: CodeCase, reply: dict[str, Any]) -> CaseOutcome:
    printed = str(reply.get("stdout", ""))[:MAX_STDOUT_SHOWN]
    if case.raises is not None:
        raised = reply.get("raised")
        types = raised.get("types", []) if isinstance(raised, dict) else []
        wanted = case.raises if "." in case.raises else f"builtins.{case.raises}"
        passed = isinstance(types, list) and wanted in types
        if passed or not case.public:
            return CaseOutcome(case.name, case.public, passed)
        got = _describe_raised(raised) if raised else _describe_value(reply)
        detail = _("{call} should raise {error}, got {got}.").format(
            call=case.call, error=case.raises, got=got
        )
        return CaseOutcome(case.name, True, False, _with_output(detail, printed))
    passed = "value" in reply and values.matches(case.expect, values.decode(reply["value"]), case.tol)
    if passed or not case.public:
        return CaseOutcome(case.name, case.public, passed)
    call = case.call if not case.setup else f"{case.setup.strip()}\n{case.call}"
    detail = _("{call}: expected {expected}, got {got}.").format(
        call=call, expected=values.show(case.expect), got=_describe_value(reply)
    )
    return CaseOutcome(case.name, True, False, _with_output(detail, printed))


def _describe_value(reply: dict[str, Any]) -> str:
    if "raised" in reply and isinstance(reply["raised"], dict):
        return _describe_raised(reply["raised"])
    if reply.get("too_large"):
        return _("a value too large to compare")
    if "value" in reply:
        return values.show(values.decode(reply["value"]))
    return _("nothing")


def _describe_raised(raised: dict[str, Any]) -> str:
    types = raised.get("types") or ["?"]
    name = str(types[0]).removeprefix("builtins.")
    message = str(raised.get("message", ""))[:200]
    return f"{name}: {message}" if message else name


def _with_output(detail: str, printed: str) -> str:
    if not printed.strip():
        return detail
    return detail + "\n" + _("It printed:") + "\n" + printed


def _load_error(error: Any) -> str:
    if not isinstance(error, dict):
        return _stopped(None)
    name = _describe_raised(error)
    line = error.get("line")
    if isinstance(line, int):
        return _("Your code raised {error} (line {line}).").format(error=name, line=line)
    return _("Your code raised {error}.").format(error=name)


def _stopped(reason: Any) -> str:
    if reason == "too_large":
        return _("Your program wrote too much output for the judge to read.")
    return _("Your program stopped before every check had run (it exited, crashed or ran out of memory).")


def _time_limit(limits: Limits) -> Verdict:
    return Verdict(
        error=_("Time limit exceeded ({seconds:g} s): is there an infinite loop?").format(
            seconds=limits.timeout_s
        ),
        timed_out=True,
    )


_sandbox: Sandbox | None = None
_sandbox_lock = threading.Lock()


def get_sandbox(settings: Any) -> Sandbox:
    """The process's sandbox, configured from the settings (created on first use)."""
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            _sandbox = Sandbox(
                python=settings.code_python,
                user=settings.code_user,
                max_concurrent=settings.code_max_concurrent,
                queue_wait_s=settings.code_queue_wait_s,
            )
        return _sandbox


def limits_from(settings: Any) -> Limits:
    return Limits(timeout_s=settings.code_timeout_s, memory_mb=settings.code_memory_mb)
