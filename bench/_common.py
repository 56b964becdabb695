"""Shared bench helpers: the results-JSON writer, the environment block, data paths, timing.

Every script writes ``bench/results/<claim>.json`` as::

    {"command": ..., "date": "YYYY-MM-DD", "environment": {...},
     "records": [{"dataset", "protocol", "method", "metric", "value", ["peer": true], ["source"]}]}

A published figure is a record with ``source`` (paper or repo, table) instead of a run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypedDict, TypeVar

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class _RecordRequired(TypedDict):
    dataset: str
    protocol: str
    method: str
    metric: str
    value: float | int | str | None


class Record(_RecordRequired, total=False):
    peer: bool
    source: str


def record(
    dataset: str,
    protocol: str,
    method: str,
    metric: str,
    value: float | int | str | None,
    *,
    peer: bool = False,
    source: str | None = None,
) -> Record:
    """One measurement; ``peer`` marks another library, ``source`` a published figure."""
    rec = Record(
        dataset=dataset,
        protocol=protocol,
        method=method,
        metric=metric,
        value=round(value, 6) if isinstance(value, float) else value,
    )
    if peer:
        rec["peer"] = True
    if source is not None:
        rec["source"] = source
    return rec


def data_dir() -> Path:
    """Public data: ``$LEARNLOOP_DATA``, else ``../shared/data`` next to the repository."""
    return Path(os.environ.get("LEARNLOOP_DATA", REPO_ROOT.parent / "shared" / "data"))


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(packages: Iterable[str]) -> dict[str, Any]:
    """Python, usable CPUs and the versions of ``packages`` (None when not installed)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env: dict[str, Any] = {"python": platform.python_version(), "cpus": cpus}
    env.update({name: package_version(name) for name in packages})
    return env


def command_line() -> str:
    """How this script was started, as ``python -m bench.<name> args``."""
    module = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "?"
    return shlex.join(["python", "-m", f"bench.{module}", *sys.argv[1:]])


def write_results(
    claim: str,
    records: list[Record],
    packages: Iterable[str],
    command: str | None = None,
    extra_environment: dict[str, Any] | None = None,
) -> Path:
    """Write ``bench/results/<claim>.json`` in the common format and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command or command_line(),
        "date": dt.date.today().isoformat(),
        "environment": {**environment(packages), **(extra_environment or {})},
        "records": records,
    }
    path = RESULTS_DIR / f"{claim}.json"
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def timed(fn: Callable[[], T], repeat: int = 1) -> tuple[T, float]:
    """Run ``fn`` ``repeat`` times; return the last result and the median wall time (s)."""
    times: list[float] = []
    result: T | None = None
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)  # type: ignore[return-value]


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS threads (threadpoolctl) for the block; None leaves the library default.

    On a small shared machine, multi-threaded OpenBLAS on small matrices can be several
    times slower than one thread, which would make timings measure the neighbours.
    """
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl not installed: BLAS threads not limited", file=sys.stderr)
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def peer_available(*modules: str) -> bool:
    """True when every module imports; a bench skips a peer (and says so) otherwise."""
    import importlib

    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError as err:
        print(
            f"peer not available ({err}); run `bash bench/peers.sh` and use .venv-peers/bin/python",
            file=sys.stderr,
        )
        return False
    return True
