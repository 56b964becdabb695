"""Claim: the practice loop's throughput and latency under concurrent learners, on SQLite and
on PostgreSQL with several worker processes, against an earlier commit in the same run.

    python -m bench.load [--baseline HEAD~1] [--users 10,50,200] [--duration 20] \\
        [--pg-workers 2] [--backends sqlite,postgres] [--pack packs/ai_era]

A bounded loopback load generator (httpx, asyncio). For each version (``--current``, default
HEAD, and ``--baseline``, default the commit before, each checked out with ``git worktree`` into
a temporary folder, so uncommitted work is never measured), backend and number
of simulated learners: a fresh database is set up by that version's own code (migrations, the
pack at ``--pack`` inside that version, one learner account and bearer token per simulated
learner, enrolled in the first role), the server is started from that version with
``uvicorn --factory learnloop.server:create_app --workers N`` (1 on SQLite, ``--pg-workers`` on
PostgreSQL), and each learner loops ``GET /api/v1/practice/next`` -> ``POST
/api/v1/practice/answer`` (a random option, number or short text) for ``--duration`` seconds
after ``--warmup`` seconds (the offline grader's encoder loads on the first text answer). Code items are off (``LEARNLOOP_CODE_PYTHON`` points nowhere), so the
run measures the loop, not the sandbox; text answers are graded by the offline grader.

Reported per configuration: answers per second, answer-request latency p50/p95/p99 (ms),
errors (HTTP >= 500 or transport errors; the transport errors also apart, each printed with
its kind), requests that timed out (60 s; the learner then
asks again), 409/422 apart, the 1-minute load
average at the end, and CPU-ms per answer (one next + one answer) of the server's process tree
and of the PostgreSQL cluster's processes, ended backends included (psutil; SQLite runs inside
the server), of the load generator itself, and the answers/s two cores would bound:
2 x 1000 / (server + database CPU-ms per answer), the number to read on a shared machine. PostgreSQL is a throw-away cluster
started here (initdb from ``--pg-bin``, fsync off). Every request has a 60-second timeout; a
configuration never runs longer than warm-up + duration + 70 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench._common import REPO_ROOT, record, write_results

SETUP = r"""
import hashlib, json, secrets, sys
from datetime import timedelta
from learnloop.config import Settings
from learnloop.services import auth, practice
from learnloop.services.context import AppContext
from learnloop.services.packs import import_pack
from learnloop.store.db import migrate
from learnloop.store.models import AuthSession, User, utcnow

url, pack, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
migrate(url)
ctx = AppContext(settings=Settings(database_url=url, default_pack=pack))
import_pack(ctx, pack)
with ctx.session() as s:
    org_id = auth.default_organisation(s).id
    role = next(iter(ctx.active_pack(s).roles))
password_hash = auth.hash_password("load-test-password-91")
tokens = []
with ctx.session() as s:
    for i in range(n):
        user = User(org_id=org_id, email=f"load{i}@example.org", name=f"Load {i}",
                    password_hash=password_hash, role="learner", locale="en")
        s.add(user)
        s.flush()
        token = secrets.token_urlsafe(32)
        s.add(AuthSession(token_hash=hashlib.sha256(token.encode()).hexdigest(), user_id=user.id,
                          csrf_token=secrets.token_hex(16), expires_at=utcnow() + timedelta(days=2)))
        tokens.append(token)
for token in tokens:
    practice.enrol(ctx, auth.resolve(ctx, token), role)
print(json.dumps(tokens))
"""


#: the loop of next -> answer pairs in one process and thread, through the ASGI app (no HTTP
#: server, no thread pool: sync handlers run inline), for the CPU and the SQL statements a pair
#: costs the server alone. ``ANSWER_FOR`` is this module's ``_answer_for`` (the same answers).
INPROCESS = r"""
import asyncio, json, os, random, sys, time
import fastapi.dependencies.utils, fastapi.routing, httpx, starlette.concurrency
from sqlalchemy import event
from sqlalchemy.engine import Engine
from learnloop.server import create_app

tokens, warm, pairs, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
from typing import Any
exec(os.environ["ANSWER_FOR"])

async def inline(func, *args, **kwargs):
    return func(*args, **kwargs)

for module in (starlette.concurrency, fastapi.routing, fastapi.dependencies.utils):
    if hasattr(module, "run_in_threadpool"):
        module.run_in_threadpool = inline
app = create_app()
loop = asyncio.new_event_loop()
client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://load")
rng = random.Random(seed)

def pair(i):
    headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
    r = loop.run_until_complete(client.get("/api/v1/practice/next", headers=headers))
    assert r.status_code == 200, r.text
    shown = r.json()
    body = {"item_id": shown["item"]["id"], "answer": _answer_for(shown["item"], rng),
            "presentation_id": shown.get("presentation_id")}
    r = loop.run_until_complete(client.post("/api/v1/practice/answer", headers=headers, json=body))
    assert r.status_code == 200, r.text

for i in range(warm):
    pair(i)
statements = [0]

@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args):
    statements[0] += 1

cpu = time.process_time()
for i in range(warm, warm + pairs):
    pair(i)
cpu = time.process_time() - cpu
print(json.dumps({"cpu_ms": 1000 * cpu / pairs, "statements": statements[0] / pairs}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree_cpu(pids: list[int]) -> float:
    """CPU seconds of the processes under ``pids``: the living ones, and those that ended and
    were reaped by their parent (PostgreSQL's postmaster reaps each backend whose connection
    closed; without them a configuration could show negative database CPU)."""
    import psutil

    total, seen = 0.0, set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
    return total


def _own_cpu() -> float:
    """CPU seconds of this process (the load generator shares the machine's cores)."""
    t = os.times()
    return t.user + t.system


@contextmanager
def postgres_cluster(pg_bin: Path):  # type: ignore[no-untyped-def]
    """A throw-away PostgreSQL cluster on a free loopback port; yields (admin URL, postmaster pid)."""
    folder = Path(tempfile.mkdtemp(prefix="learnloop-load-pg."))
    port = _free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    subprocess.run(
        [*run_as, str(pg_bin / "initdb"), "-D", str(data), "-U", "learnloop", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    subprocess.run(
        [
            *run_as,
            str(pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(folder / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield f"postgresql://learnloop@127.0.0.1:{port}/postgres", pid
    finally:
        subprocess.run(
            [*run_as, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


def _fresh_pg_database(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(
        admin_url.replace("postgresql://", "postgresql+pg8000://"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _env(url: str, pack: Path, tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNLOOP_")}
    env.update(
        {
            "LEARNLOOP_DATABASE_URL": url,
            "LEARNLOOP_DEFAULT_PACK": str(pack),
            "LEARNLOOP_LLM_WARM_UP": "0",
            "LEARNLOOP_CODE_PYTHON": "/nonexistent/python3",
            "PYTHONPATH": str(tree),
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    return env


def setup_database(tree: Path, url: str, pack: Path, learners: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SETUP, url, str(pack), str(learners)],
        cwd=tree,
        env=_env(url, pack, tree),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"setup failed in {tree}:\n{done.stderr[-3000:]}")
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@contextmanager
def server(tree: Path, url: str, pack: Path, workers: int):  # type: ignore[no-untyped-def]
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "learnloop.server:create_app"]
    command += [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    log = tempfile.NamedTemporaryFile(prefix="learnloop-load-server.", suffix=".log", delete=False)  # noqa: SIM115
    # the server's log goes to a file: a pipe nobody reads would block it once full
    proc = subprocess.Popen(
        command, cwd=tree, env=_env(url, pack, tree), stdout=subprocess.DEVNULL, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start ({tree}): {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.3)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        os.unlink(log.name)


def _answer_for(item: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    kind = item.get("kind")
    if kind == "choice":
        return {"choice": rng.choice(sorted(item.get("options") or {"a": ""}))}
    if kind == "numeric":
        return {"value": round(rng.uniform(0, 100), 2)}
    if kind == "code":
        return {"code": "def f():\n    return 0\n"}
    return {
        "text": rng.choice(
            ["I am not sure.", "It depends on the data and the context window.", "Because of overfitting."]
        )
    }


async def drive(
    base: str, tokens: list[str], warmup: float, duration: float, seed: int, cpu: Any = None
) -> dict[str, Any]:
    """The learners' loops; ``cpu()`` is read when the measured span starts and when it ends."""
    import httpx

    latencies: list[float] = []
    next_latencies: list[float] = []
    counts = {"answers": 0, "errors": 0, "transport errors": 0, "timeouts": 0, "conflicts": 0}
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def learner(i: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + i)
        headers = {"Authorization": f"Bearer {tokens[i]}"}
        while time.monotonic() < stop_at:
            try:
                t0 = time.monotonic()
                r = await client.get(f"{base}/api/v1/practice/next", headers=headers)
                t1 = time.monotonic()
                if r.status_code != 200:
                    counts["errors" if r.status_code >= 500 else "conflicts"] += measure_from <= t1 <= stop_at
                    await asyncio.sleep(0.05)
                    continue
                shown = r.json()
                item = shown["item"]
                body = {
                    "item_id": item["id"],
                    "answer": _answer_for(item, rng),
                    "presentation_id": shown.get("presentation_id"),
                }
                t2 = time.monotonic()
                r = await client.post(f"{base}/api/v1/practice/answer", headers=headers, json=body)
                t3 = time.monotonic()
            except httpx.TimeoutException:
                counts["timeouts"] += measure_from <= time.monotonic() <= stop_at
                continue
            except httpx.HTTPError as exc:
                if measure_from <= time.monotonic() <= stop_at:
                    counts["errors"] += 1
                    counts["transport errors"] += 1
                    print("transport error:", type(exc).__name__, str(exc)[:200], file=sys.stderr)
                await asyncio.sleep(0.05)
                continue
            # each request counts where it ends: the window's CPU is spent on the requests that
            # end in it (in a steady state). Counting only pairs that start and end in the window
            # dropped the pairs across its edges, whose CPU it still held: with pairs seconds
            # long (50 learners) most of the answers, inflating CPU per answer several times
            if measure_from <= t1 <= stop_at:
                next_latencies.append(t1 - t0)
            if not measure_from <= t3 <= stop_at:
                continue
            if r.status_code == 200:
                counts["answers"] += 1
                latencies.append(t3 - t2)
            elif r.status_code >= 500:
                counts["errors"] += 1
            else:
                counts["conflicts"] += 1

    snaps: list[Any] = []

    async def mark() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        snaps.append(cpu() if cpu else None)
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        snaps.append(cpu() if cpu else None)

    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        await asyncio.wait_for(
            asyncio.gather(mark(), *(learner(i, client) for i in range(len(tokens)))),
            timeout=warmup + duration + 70,
        )
    return {"latencies": latencies, "next_latencies": next_latencies, "cpu": snaps, **counts}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_config(
    tree: Path, backend: str, users: int, args: argparse.Namespace, pg: tuple[str, int] | None, tag: str
) -> dict[str, Any]:
    pack = tree / args.pack
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="learnloop-load-"))
        url, workers, db_pids = f"sqlite:///{folder / 'load.db'}", 1, []
    else:
        assert pg is not None
        url, workers, db_pids = _fresh_pg_database(pg[0], f"load_{tag}_{users}"), args.pg_workers, [pg[1]]
    tokens = setup_database(tree, url, pack, users)
    cleanup = folder if backend == "sqlite" else None
    with server(tree, url, pack, workers) as (base, pid):

        def cpu() -> tuple[float, float, float]:
            return _tree_cpu([pid]), _tree_cpu(db_pids), _own_cpu()

        result = asyncio.run(drive(base, tokens, args.warmup, args.duration, seed=users, cpu=cpu))
    load1 = os.getloadavg()[0]
    if cleanup is not None:
        shutil.rmtree(cleanup, ignore_errors=True)
    total_answers = result["answers"]
    (cpu0, db0, own0), (cpu1, db1, own1) = result["cpu"]
    server_ms = 1000 * (cpu1 - cpu0) / total_answers if total_answers else None
    db_ms = (1000 * (db1 - db0) / total_answers) if db_pids and total_answers else None
    return {
        "answers/s": result["answers"] / args.duration,
        "p50 ms": _pct(result["latencies"], 0.50),
        "p95 ms": _pct(result["latencies"], 0.95),
        "p99 ms": _pct(result["latencies"], 0.99),
        "next p95 ms": _pct(result["next_latencies"], 0.95),
        "errors": result["errors"],
        # of them, the requests that got no HTTP answer (a connection refused, reset or closed)
        "transport errors": result["transport errors"],
        "timeouts (60 s)": result["timeouts"],
        "409/422": result["conflicts"],
        "load average": load1,
        "server CPU-ms/answer": server_ms,
        "db CPU-ms/answer": db_ms,
        "load generator CPU-ms/answer": 1000 * (own1 - own0) / total_answers if total_answers else None,
        # what 2 cores could serve if server and database had them to themselves: the
        # machine-independent reading of a run on a shared machine
        "CPU-bound answers/s on 2 cores": (
            2000 / (server_ms + (db_ms or 0.0)) if server_ms is not None and server_ms > 0 else None
        ),
        "workers": workers,
    }


def run_inprocess(
    tree: Path, backend: str, args: argparse.Namespace, pg: tuple[str, int] | None, tag: str
) -> dict[str, float]:
    """One in-process run (``INPROCESS``) of a version on a fresh database: CPU-ms and SQL
    statements per next -> answer pair, the server's share without HTTP or threads."""
    import inspect

    pack = tree / args.pack
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="learnloop-load-"))
        url = f"sqlite:///{folder / 'load.db'}"
    else:
        assert pg is not None
        folder, url = None, _fresh_pg_database(pg[0], f"inproc_{tag}")
    try:
        tokens = setup_database(tree, url, pack, args.inprocess_learners)
        env = _env(url, pack, tree)
        env["ANSWER_FOR"] = inspect.getsource(_answer_for)
        env["LEARNLOOP_JOBS_WORKER"] = "off"
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                INPROCESS,
                json.dumps(tokens),
                str(args.inprocess_warm),
                str(args.inprocess_pairs),
                "7",
            ],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(f"in-process run failed in {tree}:\n{done.stderr[-3000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def worktree(rev: str):  # type: ignore[no-untyped-def]
    folder = Path(tempfile.mkdtemp(prefix="learnloop-baseline-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), rev],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(folder)], cwd=REPO_ROOT, capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--current", default="HEAD", help="the commit measured (checked out apart)")
    parser.add_argument("--baseline", default="HEAD~1", help="the earlier commit to run in the same run")
    parser.add_argument("--users", default="10,50,200", help="simulated learners, comma-separated")
    parser.add_argument(
        "--duration", type=float, default=20.0, help="measured seconds per configuration (at most 60)"
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="unmeasured seconds first (models load)")
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument(
        "--inprocess-repeat",
        type=int,
        default=0,
        help="also run next -> answer pairs in one process through the ASGI app, the versions "
        "alternating this many times per backend: CPU-ms (median) and SQL statements per pair",
    )
    parser.add_argument("--inprocess-pairs", type=int, default=150)
    parser.add_argument("--inprocess-warm", type=int, default=40, help="unmeasured pairs first")
    parser.add_argument("--inprocess-learners", type=int, default=5)
    parser.add_argument("--skip-http", action="store_true", help="only the in-process runs")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pack", default="packs/ai_era", help="the pack, relative to each version's tree")
    parser.add_argument(
        "--pg-bin",
        type=Path,
        default=None,
        help="PostgreSQL's bin folder (default: the newest in /usr/lib/postgresql)",
    )
    args = parser.parse_args(argv)
    try:
        users = [int(u) for u in args.users.split(",")]
    except ValueError:
        parser.error("--users must be numbers separated by commas")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if any(b not in ("sqlite", "postgres") for b in backends) or not backends:
        parser.error("--backends takes sqlite and/or postgres")
    if not 1 <= args.duration <= 60 or any(not 1 <= u <= 500 for u in users):
        parser.error("--duration must be 1-60 s and --users 1-500 each")
    pg_bin = args.pg_bin
    if "postgres" in backends and pg_bin is None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if not found:
            parser.error("no PostgreSQL server found; give --pg-bin")
        pg_bin = found[-1].parent
    baseline_rev = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    current_rev = subprocess.run(
        ["git", "rev-parse", "--short", args.current],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    records = []
    with worktree(args.current) as cur_tree, worktree(args.baseline) as base_tree:
        versions = [
            (f"current {current_rev}", cur_tree, "cur"),
            (f"baseline {baseline_rev}", base_tree, "base"),
        ]
        for backend in backends:
            with postgres_cluster(pg_bin) if backend == "postgres" else _nothing() as pg:
                runs: dict[str, list[dict[str, float]]] = {label: [] for label, _t, _g in versions}
                for k in range(args.inprocess_repeat):
                    for label, tree, tag in versions if k % 2 == 0 else versions[::-1]:
                        one = run_inprocess(tree, backend, args, pg, f"{tag}{k}")
                        print(backend, "in-process", label, json.dumps(one), flush=True)
                        runs[label].append(one)
                for label, got in runs.items():
                    if not got:
                        continue
                    protocol = (
                        f"in process, next -> answer through the ASGI app, {args.inprocess_learners} "
                        f"learners by turns, {args.inprocess_pairs} pairs after {args.inprocess_warm}, "
                        f"{len(got)} runs alternating with the other version"
                    )
                    cpu = sorted(r["cpu_ms"] for r in got)
                    records.append(
                        record(backend, protocol, label, "server CPU-ms/pair (median)", cpu[len(cpu) // 2])
                    )
                    records.append(record(backend, protocol, label, "server CPU-ms/pair (min)", cpu[0]))
                    records.append(
                        record(backend, protocol, label, "SQL statements/pair", got[0]["statements"])
                    )
                for n in [] if args.skip_http else users:
                    for label, tree, tag in versions:
                        result = run_config(tree, backend, n, args, pg, tag)
                        shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in result.items()}
                        print(backend, n, label, json.dumps(shown), flush=True)
                        protocol = f"{n} learners, next -> answer for {args.duration:g} s, {result['workers']} worker(s)"
                        for metric, value in result.items():
                            if metric != "workers":
                                records.append(record(backend, protocol, label, metric, value))
    path = write_results("load", records, ["uvicorn", "sqlalchemy", "pg8000", "httpx"])
    print(f"wrote {path}")
    return 0


@contextmanager
def _nothing():  # type: ignore[no-untyped-def]
    yield None


if __name__ == "__main__":
    raise SystemExit(main())
