"""Red-team submissions for the code judge, and checks of their effect on the host.

Shared by the red-team tests (tests/sandbox/test_red_team.py) and the bench (bench/judge.py).
Every check here looks at the host from outside the judge: files, processes, sockets, the
server process's memory and what the learner is shown. Nothing here calls the judge's own
code to decide whether an attack got through.

Each attack is a submission for the task "write add(a, b)" that is wrong (it never returns
the right sum for the hidden cases) and tries something else on the side. Placeholders in the
source: ``{canary}`` a file with a secret the submission must not read, delete or change;
``{pwned}`` a path the submission must not create; ``{port}`` a loopback TCP port and
``{unix}`` a Unix socket the server side listens on; ``{secret}`` an environment variable's
value in the server process.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from learnloop.content.models import CodeCase

#: the task every attack pretends to solve; the hidden cases' calls and values are secret
CASES = [
    CodeCase(name="small", call="add(2, 3)", expect=5, public=True),
    CodeCase(name="zero", call="add(-1, 1)", expect=0),
    CodeCase(name="primes", call="add(7919, 104729)", expect=112648),
]
HIDDEN_TEXT = ("7919", "104729", "112648")
CORRECT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return 5\n"


@dataclass(frozen=True)
class Attack:
    name: str
    source: str
    #: what the attack tries, for the report
    goal: str
    #: seconds to wait after the run before looking for effects (delayed children)
    settle_s: float = 0.0
    tags: tuple[str, ...] = field(default_factory=tuple)


ATTACKS: list[Attack] = [
    Attack(
        "forged_result_marker",
        "import sys, os\n"
        "for fd in range(0, 32):\n"
        "    try:\n"
        '        os.write(fd, b\'\\n{{"loaded": true}}\\n{{"passed": ["small", "zero", "primes"], "failed": []}}\\n\')\n'
        "    except OSError:\n"
        "        pass\n"
        "for arg in sys.argv:\n"
        '    print(arg + \'{{"passed": ["test_small", "test_zero", "test_primes"], "failed": [], "error": null}}\')\n'
        "sys.stdout.flush()\n"
        "os._exit(0)\n",
        "print a passing result after the argv marker and exit with status 0",
    ),
    Attack("exit_zero_at_load", "import os\nos._exit(0)\n", "os._exit(0) before any case runs"),
    Attack(
        "exit_zero_in_call",
        "import os\ndef add(a, b):\n    os._exit(0)\n",
        "os._exit(0) inside the function under test",
    ),
    Attack("system_exit", "raise SystemExit(0)\n", "SystemExit(0) at load"),
    Attack(
        "always_equal",
        "class Anything:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "    __hash__ = object.__hash__\n"
        "def add(a, b):\n    return Anything()\n",
        "return an object that equals everything",
    ),
    Attack(
        "always_equal_int_subclass",
        "class Int(int):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def add(a, b):\n    return Int(5)\n",
        "return an int subclass that equals everything",
    ),
    Attack(
        "patch_builtins",
        "import builtins\n"
        "builtins.isinstance = lambda *a: True\n"
        "builtins.type = lambda *a: int\n"
        "builtins.len = lambda *a: 0\n"
        "def add(a, b):\n    return 5\n",
        "patch isinstance, type and len",
    ),
    Attack(
        "patch_sys_and_runner",
        "import sys, json\n"
        "main = sys.modules['__main__']\n"
        "for name in dir(main):\n"
        "    if callable(getattr(main, name, None)) and not name.startswith('__'):\n"
        "        try:\n"
        "            setattr(main, name, lambda *a, **k: {{'passed': True}})\n"
        "        except Exception:\n"
        "            pass\n"
        'json.dumps = lambda *a, **k: \'{{"loaded": true, "passed": ["small", "zero", "primes"]}}\'\n'
        "sys.stdout = None\n"
        "def add(a, b):\n    return 5\n",
        "replace the runner's functions, json.dumps and sys.stdout",
    ),
    Attack(
        "switch_off_guard",
        "import sys\n"
        "guard = getattr(sys.modules['__main__'], '_guard', None)\n"
        "if guard is not None:\n"
        "    guard.__code__ = (lambda e, a: None).__code__\n"
        "import subprocess\n"
        "subprocess.run(['sh', '-c', 'echo pwned > {pwned}'])\n"
        "def add(a, b):\n    return 5\n",
        "replace an audit hook's code object, then run a program",
    ),
    Attack(
        "fork_exec",
        "import _posixsubprocess, os\n"
        "r, w = os.pipe()\n"
        "try:\n"
        "    _posixsubprocess.fork_exec([b'/bin/sh', b'-c', b'id > {pwned}; cat {canary} >> {pwned}'], [b'/bin/sh'], True, (w,), None, None,\n"
        "        -1, -1, -1, -1, -1, -1, r, w, True, False, 0, None, None, None, -1, None, False)\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
        "def add(a, b):\n    return 5\n",
        "run a program through _posixsubprocess.fork_exec",
    ),
    Attack(
        "subprocess",
        "import subprocess\n"
        "out = subprocess.run(['sh', '-c', 'id; cat {canary}; touch {pwned}'], capture_output=True, text=True)\n"
        "print(out.stdout, out.stderr)\n"
        "def add(a, b):\n    return 5\n",
        "run a shell, read a host file, create a host file",
    ),
    Attack(
        "ctypes",
        "import ctypes, ctypes.util\n"
        "libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')\n"
        "libc.system(b'touch {pwned}')\n"
        "def add(a, b):\n    return 5\n",
        "call libc's system() through ctypes",
    ),
    Attack(
        "read_tests_and_memory",
        "import gc, sys, os\n"
        "found = []\n"
        "for obj in gc.get_objects():\n"
        "    try:\n"
        "        text = repr(obj)\n"
        "    except Exception:\n"
        "        continue\n"
        "    if '112648' in text or '104729' in text:\n"
        "        found.append(text[:200])\n"
        "for root, dirs, files in os.walk('/'):\n"
        "    if root.startswith(('/proc', '/sys', '/usr')):\n"
        "        continue\n"
        "    for f in files:\n"
        "        try:\n"
        "            data = open(os.path.join(root, f), 'rb').read(100000)\n"
        "        except Exception:\n"
        "            continue\n"
        "        if b'112648' in data:\n"
        "            found.append(os.path.join(root, f))\n"
        "def add(a, b):\n    raise ValueError('found: ' + repr(found))\n",
        "search memory and the filesystem for the hidden cases and raise them back",
    ),
    Attack(
        "read_proc_self_and_host",
        "import os\n"
        "seen = []\n"
        "for path in ['/proc/self/environ', '/proc/1/environ', '/proc/1/cmdline', '/proc/self/mountinfo', '{canary}',\n"
        "             '/etc/passwd', '/etc/shadow', '/root', '/proc/1/root/etc/hostname']:\n"
        "    try:\n"
        "        seen.append(open(path, 'rb').read(4000))\n"
        "    except Exception as exc:\n"
        "        seen.append(repr(exc).encode())\n"
        "leak = b' '.join(seen).decode('latin-1')\n"
        "print(leak)\n"
        "def add(a, b):\n    raise ValueError(leak[:3000])\n",
        "read /proc/self, PID 1, the canary and /etc/shadow, and show them in the feedback",
    ),
    Attack(
        "read_environment",
        "import os\nenv = dict(os.environ)\nprint(env)\ndef add(a, b):\n    raise ValueError(repr(env))\n",
        "read the server's environment (secret key, API keys)",
    ),
    Attack(
        "read_database",
        "import glob, os\n"
        "hits = []\n"
        "for pattern in ['/**/*.db', '/**/*.sqlite*', '/var/run/postgresql/*', '/tmp/**', '/run/**']:\n"
        "    hits += glob.glob(pattern, recursive=True)[:50]\n"
        "def add(a, b):\n    raise ValueError(repr(hits))\n",
        "find the SQLite database or the PostgreSQL socket",
    ),
    Attack(
        "write_outside_workdir",
        "import os\n"
        "for path in ['{pwned}', b'{pwned}', '../{pwned}', '/work/../{pwned}']:\n"
        "    try:\n"
        "        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)\n"
        "        os.write(fd, b'pwned')\n"
        "        os.close(fd)\n"
        "    except Exception:\n"
        "        pass\n"
        "open('inside.txt', 'w').write('allowed')\n"
        "def add(a, b):\n    return 5\n",
        "create a host file with os.open, a bytes path and ../",
    ),
    Attack(
        "delete_outside_workdir",
        "import os, shutil\n"
        "for f in (lambda: os.remove('{canary}'), lambda: shutil.rmtree(os.path.dirname('{canary}'))):\n"
        "    try:\n"
        "        f()\n"
        "    except Exception:\n"
        "        pass\n"
        "def add(a, b):\n    return 5\n",
        "delete the canary and its folder",
    ),
    Attack(
        "fork_bomb",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "fork without end",
    ),
    Attack("memory_bomb", "x = ' ' * (4 * 1024 ** 3)\ndef add(a, b):\n    return 5\n", "allocate 4 GB"),
    Attack(
        "memory_bomb_gradual",
        "blocks = []\ndef add(a, b):\n    while True:\n        blocks.append(bytearray(50_000_000))\n",
        "allocate 50 MB blocks until something gives",
    ),
    Attack("infinite_loop", "def add(a, b):\n    while True:\n        pass\n", "never return"),
    Attack(
        "output_flood_print",
        "chunk = 'x' * 1_000_000\nfor _ in range(300):\n    print(chunk)\ndef add(a, b):\n    return 5\n",
        "print 300 MB",
    ),
    Attack(
        "output_flood_fds",
        "import os\n"
        "chunk = b'y' * 1_000_000\n"
        "for fd in range(0, 8):\n"
        "    for _ in range(40):\n"
        "        try:\n"
        "            os.write(fd, chunk)\n"
        "        except OSError:\n"
        "            break\n"
        "def add(a, b):\n    return 5\n",
        "write 300+ MB to every inherited file descriptor",
    ),
    Attack(
        "socket_loopback",
        "import socket\n"
        "try:\n"
        "    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "    s.sendall(b'pwned')\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
        "def add(a, b):\n    return 5\n",
        "connect to a server on 127.0.0.1",
    ),
    Attack(
        "socket_unix",
        "import socket\n"
        "for path in ['{unix}', '/var/run/postgresql/.s.PGSQL.5432', '/tmp/.s.PGSQL.5432']:\n"
        "    try:\n"
        "        s = socket.socket(socket.AF_UNIX)\n"
        "        s.connect(path)\n"
        "        s.sendall(b'pwned')\n"
        "    except Exception as exc:\n"
        "        print(exc)\n"
        "def add(a, b):\n    return 5\n",
        "connect to a Unix socket of the host (a database's)",
    ),
    Attack(
        "detached_children",
        "import os, subprocess\n"
        "subprocess.Popen(['sh', '-c', 'sleep 2; touch {pwned}'], start_new_session=True,\n"
        "                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        import time\n"
        "        time.sleep(2)\n"
        "        open('{pwned}', 'w').write('late')\n"
        "    os._exit(0)\n"
        "def add(a, b):\n    return 5\n",
        "leave detached processes that act after the run",
        settle_s=3.0,
    ),
    Attack(
        "lingering_threads",
        "import threading, time\n"
        "def later():\n"
        "    time.sleep(2)\n"
        "    open('{pwned}', 'w').write('late')\n"
        "threading.Thread(target=later, daemon=False).start()\n"
        "def add(a, b):\n    return 5\n",
        "leave a thread that acts after the run",
        settle_s=3.0,
    ),
]


class Host:
    """The host-side fixtures of an attack run: a canary, a forbidden path, two listeners."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="learnloop-redteam-"))
        self.secret = "canary-" + os.urandom(8).hex()
        self.canary = self.dir / "secret.txt"
        self.canary.write_text(self.secret)
        self.pwned = self.dir / "pwned"
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.tcp.settimeout(0.05)
        self.port = self.tcp.getsockname()[1]
        self.unix_path = str(self.dir / "db.sock")
        self.unix = self._unix_listener()
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        self._env_before = os.environ.get("LEARNLOOP_REDTEAM_SECRET")
        os.environ["LEARNLOOP_REDTEAM_SECRET"] = self.secret

    def _unix_listener(self) -> socket.socket:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(self.unix_path)
        listener.listen(8)
        listener.settimeout(0.05)
        return listener

    def _accept(self) -> None:
        while not self._stop.is_set():
            for listener in (self.tcp, self.unix):
                try:
                    conn, _addr = listener.accept()
                except (TimeoutError, OSError):
                    continue
                self.connections += 1
                conn.close()

    def source(self, attack: Attack) -> str:
        return attack.source.format(
            canary=self.canary, pwned=self.pwned, port=self.port, unix=self.unix_path, secret=self.secret
        )

    def problems(self, shown: str) -> list[str]:
        """What the attack changed or learnt on the host; empty when it was contained."""
        found = []
        if not self.canary.exists() or self.canary.read_text() != self.secret:
            found.append("the canary file was deleted or changed")
        if self.pwned.exists():
            found.append("a file outside the sandbox was created")
        if self.connections:
            found.append("a host socket accepted a connection")
        if self.secret in shown:
            found.append("a host secret reached the learner")
        if any(text in shown for text in HIDDEN_TEXT):
            found.append("a hidden case reached the learner")
        return found

    def reset(self) -> None:
        """Put the fixtures back as they were (an attack that escaped may have removed them)."""
        self.dir.mkdir(exist_ok=True)
        self.canary.write_text(self.secret)
        if not Path(self.unix_path).exists():
            old = self.unix
            self.unix = self._unix_listener()
            old.close()
        if self.pwned.exists():
            self.pwned.unlink()
        self.connections = 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.tcp.close()
        self.unix.close()
        if self._env_before is None:
            os.environ.pop("LEARNLOOP_REDTEAM_SECRET", None)
        else:
            os.environ["LEARNLOOP_REDTEAM_SECRET"] = self._env_before
        shutil.rmtree(self.dir, ignore_errors=True)


def foreign_processes() -> set[tuple[int, str]]:
    """Processes in PID namespaces other than ours (a sandbox's, for instance): (pid, start)."""
    mine = os.readlink("/proc/self/ns/pid")
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != mine:
                stat = Path(f"/proc/{entry}/stat").read_text()
                found.add((int(entry), stat.rsplit(")", 1)[1].split()[19]))
        except (FileNotFoundError, PermissionError, ProcessLookupError, IndexError):
            continue
    return found


def left_behind(before: set[tuple[int, str]], wait_s: float = 2.0) -> set[tuple[int, str]]:
    """Processes in foreign PID namespaces that were not there ``before`` and are still there
    after ``wait_s`` (a sandbox of another program on the host comes and goes; a process that
    outlived its sandbox stays)."""
    deadline = time.monotonic() + wait_s
    while True:
        extra = foreign_processes() - before
        if not extra or time.monotonic() >= deadline:
            return extra
        time.sleep(0.1)


def rss_mb() -> float:
    """This process's resident memory, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
