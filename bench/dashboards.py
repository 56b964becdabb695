"""Claim: every report dashboard renders in under a second for an organisation of 10,000
learners and 5 million answers, on SQLite and on PostgreSQL.

    python -m bench.dashboards                       # both backends, full size
    python -m bench.dashboards --learners 500 --answers 100000 --backends sqlite   # smoke run
    python -m bench.dashboards --backends sqlite --reuse-db --pages pdf-parts --pdf-baseline REV
        # the team report and its PDF apart, on an earlier run's database; the PDF also drawn
        # by plots.py of git revision REV, in turn with today's

The organisation (20 teams, the AI-era pack's five roles, 26 weeks of practice) is simulated
in numpy, vectorised over learners: each learner practises the skills of their role (targets
and prerequisites), is right with a logistic chance that rises once a hidden skill is learned,
and their BKT mastery and its history are updated exactly as the live loop does (default
parameters). Answers get ids in time order. Rows are bulk loaded with executemany (SQLite)
or COPY (PostgreSQL) with the secondary indexes dropped and rebuilt afterwards; PostgreSQL
is a throw-away cluster started like ``scripts/test.sh`` does unless ``--postgres-url``.

Each page is fetched over HTTP through FastAPI's TestClient (server and client in one
process) once to warm up and then ``--repeat`` times; the median wall time is the record.
The first team dashboard of an organisation also stores its weekly trend snapshots; that
one-off backfill is measured on its own beforehand. The machine is shared: the load average
before and after is in the environment block.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from bench._common import REPO_ROOT, Record, record, write_results
from learnloop.config import Settings
from learnloop.content.graph import prerequisite_closure
from learnloop.content.loader import load_pack
from learnloop.content.models import Pack
from learnloop.services.auth import create_organisation, create_user, get_or_create_team, hash_password
from learnloop.services.context import AppContext
from learnloop.services.packs import import_pack
from learnloop.services.reports_items import compute_item_report
from learnloop.services.reports_snapshots import ensure_weekly_snapshots
from learnloop.store.db import get_engine, migrate

PACK = REPO_ROOT / "packs" / "ai_era"
PASSWORD = "bench-password"
Array = np.ndarray
P_INIT, P_LEARN, P_GUESS, P_SLIP = 0.2, 0.15, 0.2, 0.1  # learnloop's default BKT parameters


# --------------------------------------------------------------------------- simulation


@dataclass
class Synthetic:
    """The simulated organisation as column arrays (learner indices are 0-based)."""

    learners: int
    teams: int
    team_of: Array
    role_of: Array  # -1: no target role
    deleted: Array
    skill_ids: list[str]
    item_ids: list[str]
    item_skill: Array
    item_kind: list[str]
    # answers, in time order
    user: Array
    item: Array
    correct: Array
    answer_json: list[str]
    duration_ms: Array
    at: Array  # datetime64[us], UTC
    p_after: Array
    # final mastery per (learner, skill) with answers
    m_user: Array
    m_skill: Array
    m_p: Array
    m_attempts: Array
    m_correct: Array
    m_last: Array  # index into the answers


def simulate(pack: Pack, learners: int, answers: int, teams: int, weeks: int, seed: int) -> Synthetic:
    rng = np.random.default_rng(seed)
    skill_ids = [s.id for s in pack.skills]
    column = {s: j for j, s in enumerate(skill_ids)}
    n_skills = len(skill_ids)
    items = pack.items
    item_skill = np.array([column[i.skills[0]] for i in items])
    difficulty = np.array([i.difficulty for i in items])
    by_skill = [np.flatnonzero(item_skill == j) for j in range(n_skills)]
    items_of = np.full((n_skills, max(len(b) for b in by_skill)), -1)
    for j, b in enumerate(by_skill):
        items_of[j, : len(b)] = b
    n_items_of = np.array([len(b) for b in by_skill])
    prerequisites = {s.id: list(s.prerequisites) for s in pack.skills}
    role_sets = [
        sorted(column[s] for s in prerequisite_closure(prerequisites, r.targets) if n_items_of[column[s]])
        for r in pack.roles
    ]
    role_skills = np.full((len(role_sets), max(len(r) for r in role_sets)), -1)
    for r, skills in enumerate(role_sets):
        role_skills[r, : len(skills)] = skills
    role_len = np.array([len(r) for r in role_sets])

    role_of = rng.integers(len(pack.roles), size=learners)
    role_of[rng.random(learners) < 0.02] = -1  # no target role, and so no answers
    team_of = rng.integers(teams, size=learners)
    deleted = rng.random(learners) < 0.01
    aptitude = rng.normal(0.0, 0.8, learners)
    weight = rng.uniform(0.4, 1.6, learners) * (role_of >= 0)
    quota = np.floor(answers * weight / weight.sum()).astype(np.int64)
    quota[np.argsort(-weight)[: answers - quota.sum()]] += 1  # exact total

    span = np.timedelta64(weeks * 7 * 86400, "s").astype("timedelta64[us]")
    now = np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")
    start = now - span + (rng.uniform(0, 0.35, learners) * span.astype(np.int64)).astype("timedelta64[us]")
    end = now - (rng.uniform(0, 3 * 86400e6, learners)).astype("timedelta64[us]")
    length = (end - start).astype(np.int64).astype(float)

    known = rng.random((learners, n_skills)) < 0.15
    mastery = np.full((learners, n_skills), P_INIT)
    attempts = np.zeros((learners, n_skills), dtype=np.int64)
    right = np.zeros((learners, n_skills), dtype=np.int64)
    total = int(quota.sum())
    user = np.empty(total, dtype=np.int64)
    item = np.empty(total, dtype=np.int64)
    correct = np.empty(total, dtype=bool)
    p_after = np.empty(total)
    at = np.empty(total, dtype="datetime64[us]")
    ptr = 0
    for step in range(int(quota.max(initial=0))):
        active = np.flatnonzero(quota > step)
        n = active.size
        roles = role_of[active]
        skill = role_skills[roles, (rng.random(n) * role_len[roles]).astype(np.int64)]
        chosen = items_of[skill, (rng.random(n) * n_items_of[skill]).astype(np.int64)]
        knows = known[active, skill]
        logit = aptitude[active] + np.where(knows, 1.8, -1.0) - 0.5 * difficulty[chosen]
        ok = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
        known[active, skill] |= rng.random(n) < P_LEARN
        m = mastery[active, skill]
        num = np.where(ok, m * (1 - P_SLIP), m * P_SLIP)
        den = num + np.where(ok, (1 - m) * P_GUESS, (1 - m) * (1 - P_GUESS))
        post = num / den
        mastery[active, skill] = post + (1 - post) * P_LEARN
        attempts[active, skill] += 1
        right[active, skill] += ok
        sl = slice(ptr, ptr + n)
        user[sl], item[sl], correct[sl], p_after[sl] = active, chosen, ok, mastery[active, skill]
        frac = (step + rng.random(n)) / quota[active]
        at[sl] = start[active] + (frac * length[active]).astype("timedelta64[us]")
        ptr += n

    order = np.argsort(at, kind="stable")
    user, item, correct, p_after, at = user[order], item[order], correct[order], p_after[order], at[order]
    skill_of = item_skill[item]
    last = np.full((learners, n_skills), -1, dtype=np.int64)
    np.maximum.at(last, (user, skill_of), np.arange(total))
    m_user, m_skill = np.nonzero(attempts)

    answer_json = _answers(pack, item, correct, rng)
    minutes = np.array([i.minutes for i in items])
    duration = (rng.uniform(0.3, 2.0, total) * minutes[item] * 60_000).astype(np.int64)
    return Synthetic(
        learners=learners,
        teams=teams,
        team_of=team_of,
        role_of=role_of,
        deleted=deleted,
        skill_ids=skill_ids,
        item_ids=[i.id for i in items],
        item_skill=item_skill,
        item_kind=[i.kind for i in items],
        user=user,
        item=item,
        correct=correct,
        answer_json=answer_json,
        duration_ms=duration,
        at=at,
        p_after=p_after,
        m_user=m_user,
        m_skill=m_skill,
        m_p=mastery[m_user, m_skill],
        m_attempts=attempts[m_user, m_skill],
        m_correct=right[m_user, m_skill],
        m_last=last[m_user, m_skill],
    )


def _answers(pack: Pack, item: Array, correct: Array, rng: np.random.Generator) -> list[str]:
    """The stored answer: the key when right, a random distractor when wrong (choice items)."""
    texts: list[list[str]] = []
    keys = np.zeros(len(pack.items), dtype=np.int64)
    for k, it in enumerate(pack.items):
        if it.kind == "choice" and it.options and it.key:
            options = sorted(it.options)
            keys[k] = options.index(it.key)
            texts.append([json.dumps({"choice": o}) for o in options])
        else:
            texts.append([json.dumps({"simulated": True})])
    n_options = np.array([len(t) for t in texts])
    wrong = (
        keys[item] + 1 + (rng.random(item.size) * np.maximum(n_options[item] - 1, 1)).astype(np.int64)
    ) % n_options[item]
    pick = np.where(correct | (n_options[item] == 1), keys[item] * (n_options[item] > 1), wrong)
    return [texts[i][p] for i, p in zip(item.tolist(), pick.tolist(), strict=True)]


# --------------------------------------------------------------------------- loading


@dataclass
class Staff:
    org_id: int
    manager_id: int
    first_learner_id: int
    team_ids: list[int]


def create_staff(ctx: AppContext, teams: int) -> Staff:
    with ctx.session() as session:
        org = create_organisation(session, "Bench Org", slug="bench")
        team_ids = [get_or_create_team(session, org.id, f"Team {k + 1:02d}").id for k in range(teams)]
        shared = hash_password(PASSWORD)
        manager = create_user(
            session,
            org_id=org.id,
            email="manager@bench.example",
            name="Bench Manager",
            password=PASSWORD,
            role="manager",
            team_id=team_ids[0],
            password_hash=shared,
        )
        for role in ("instructor", "admin"):
            create_user(
                session,
                org_id=org.id,
                email=f"{role}@bench.example",
                name=f"Bench {role}",
                password=PASSWORD,
                role=role,
                password_hash=shared,
            )
        session.flush()
        return Staff(org.id, manager.id, manager.id + 3, team_ids)


def existing_staff(ctx: AppContext, teams: int) -> Staff:
    """The staff of an organisation loaded by an earlier run (``--reuse-db``)."""
    from sqlalchemy import select

    from learnloop.store.models import Organisation, Team, User

    with ctx.session() as session:
        org = session.scalars(select(Organisation).where(Organisation.slug == "bench")).one()
        team_ids = list(session.scalars(select(Team.id).where(Team.org_id == org.id).order_by(Team.name)))
        manager = session.scalars(select(User).where(User.email == "manager@bench.example")).one()
        if len(team_ids) != teams:
            raise SystemExit(f"--reuse-db: the database has {len(team_ids)} teams, not {teams}")
        return Staff(org.id, manager.id, manager.id + 3, team_ids)


def _iso(moments: Array, suffix: str = "") -> list[str]:
    # '2026-11-28T12:00:00.000000' -> '2026-11-28 12:00:00.000000' (SQLAlchemy's SQLite form)
    return [s[:10] + " " + s[11:] + suffix for s in np.datetime_as_string(moments, unit="us").tolist()]


def table_rows(
    data: Synthetic, staff: Staff, pack: Pack, tz: str
) -> dict[str, tuple[list[str], Iterable[tuple]]]:
    """Rows per table in load order; ``tz`` is appended to timestamps (PostgreSQL wants +00)."""
    n = data.learners
    ids = np.arange(n) + staff.first_learner_id
    now = _iso(np.array([np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")]), tz)[0]
    shared = hash_password(PASSWORD)
    reports_to_manager = (data.team_of == 0) & (np.arange(n) % 3 != 2)
    consent = np.random.default_rng(1).random(n) < 0.7
    users = [
        (
            int(ids[u]),
            staff.org_id,
            staff.team_ids[int(data.team_of[u])],
            staff.manager_id if reports_to_manager[u] else None,
            f"learner{u:05d}@bench.example",
            f"Learner {u:05d}",
            shared,
            "learner",
            "en",
            bool(consent[u]),
            True,
            now,
            now if data.deleted[u] else None,
        )
        for u in range(n)
    ]
    roles = [r.id for r in pack.roles]
    enrolments = [
        (int(ids[u]), roles[int(data.role_of[u])], True, now) for u in range(n) if data.role_of[u] >= 0
    ]
    stamps = _iso(data.at, tz)
    skills_json = [json.dumps([data.skill_ids[s]]) for s in data.item_skill]
    response_ids = np.arange(data.user.size) + 1
    uid = ids[data.user].tolist()
    items, skill_of = data.item.tolist(), data.item_skill[data.item].tolist()
    correct, dur, p_after = data.correct.tolist(), data.duration_ms.tolist(), data.p_after.tolist()

    def responses() -> Iterator[tuple]:
        for k in range(len(uid)):
            i = items[k]
            yield (
                k + 1,
                staff.org_id,
                uid[k],
                data.item_ids[i],
                skills_json[i],
                data.item_kind[i],
                "practice",
                data.answer_json[k],
                correct[k],
                1.0 if correct[k] else 0.0,
                0,
                dur[k],
                stamps[k],
            )

    def history() -> Iterator[tuple]:
        for k in range(len(uid)):
            yield (k + 1, uid[k], data.skill_ids[skill_of[k]], k + 1, p_after[k], stamps[k])

    last = data.m_last
    mastery = (
        (int(ids[u]), data.skill_ids[s], float(p), int(a), int(c), int(response_ids[i]), stamps[i])
        for u, s, p, a, c, i in zip(
            data.m_user, data.m_skill, data.m_p, data.m_attempts, data.m_correct, last, strict=True
        )
    )
    return {
        "users": (
            [
                "id",
                "org_id",
                "team_id",
                "manager_id",
                "email",
                "name",
                "password_hash",
                "role",
                "locale",
                "consent_share",
                "is_simulated",
                "created_at",
                "deleted_at",
            ],
            users,
        ),
        "enrolments": (["user_id", "role_id", "is_active", "created_at"], enrolments),
        "responses": (
            [
                "id",
                "org_id",
                "user_id",
                "item_id",
                "skills",
                "kind",
                "context",
                "answer",
                "correct",
                "score",
                "hints_used",
                "duration_ms",
                "created_at",
            ],
            responses(),
        ),
        "mastery_history": (["id", "user_id", "skill_id", "response_id", "p_known", "created_at"], history()),
        "mastery": (
            ["user_id", "skill_id", "p_known", "attempts", "correct", "last_response_id", "updated_at"],
            mastery,
        ),
    }


def _chunks(rows: Iterable[tuple], size: int = 100_000) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_sqlite(path: Path, tables: dict[str, tuple[list[str], Iterable[tuple]]]) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    for table, (columns, rows) in tables.items():
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT NULL",
            (table,),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        for batch in _chunks(rows):
            conn.executemany(sql, batch)
        conn.commit()
        for _, create in indexes:
            conn.execute(create)
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def load_postgres(url: str, tables: dict[str, tuple[list[str], Iterable[tuple]]]) -> None:
    from urllib.parse import unquote, urlsplit

    import pg8000.native

    parts = urlsplit(url.replace("postgresql+pg8000://", "postgresql://", 1))
    conn = pg8000.native.Connection(
        unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        host=parts.hostname or "localhost",
        port=parts.port or 5432,
        database=(parts.path or "/").lstrip("/") or None,
    )
    try:
        conn.run("SET session_replication_role = replica")  # no FK triggers during the load
        for table, (columns, rows) in tables.items():
            indexes = conn.run(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                t=table,
            )
            for name, _ in indexes:
                conn.run(f'DROP INDEX "{name}"')
            for batch in _chunks(rows, 50_000):
                text_rows = "".join("\t".join(_copy_text(v) for v in row) + "\n" for row in batch)
                conn.run(f"COPY {table} ({', '.join(columns)}) FROM STDIN", stream=io.StringIO(text_rows))
            for _, create in indexes:
                conn.run(create)
            if "id" in columns:
                conn.run(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
        conn.run("SET session_replication_role = origin")
        conn.run("ANALYZE")
    finally:
        conn.close()


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster in a temporary folder on a free loopback port (as scripts/test.sh)."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not binaries:
        raise SystemExit("no PostgreSQL server installed: apt-get install postgresql, or pass --postgres-url")
    bin_dir = binaries[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="learnloop-bench-pg."))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_as: list[str] = []
    if os.geteuid() == 0:
        if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "learnloop", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c shared_buffers=1GB -c work_mem=64MB -c maintenance_work_mem=512MB "
        "-c max_wal_size=8GB"
    )
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "pg_ctl"),
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
        yield f"postgresql://learnloop@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- measuring


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_pages(
    ctx: AppContext, staff: Staff, data: Synthetic, repeat: int, only: list[str] | None = None
) -> dict[str, tuple[float, float, float]]:
    """Median seconds per page: with plots drawn afresh, with the plot cache warm, and the CPU
    seconds of the fresh GETs (this process: server and client; what a loaded machine changes
    least). ``only``: these paths (as listed below) and no others."""
    from fastapi.testclient import TestClient

    from learnloop.server import create_app
    from learnloop.web import plots

    answers = np.bincount(data.user, minlength=data.learners)
    typical = int(
        np.argmin(
            np.abs(answers - data.user.size / data.learners) + (data.role_of < 0) * 1e9 + data.deleted * 1e9
        )
    )
    logins = {
        "manager": "manager@bench.example",
        "instructor": "instructor@bench.example",
        "learner": f"learner{typical:05d}@bench.example",
    }
    pages = {
        "manager": [
            "/reports/team",
            f"/reports/team?team={staff.team_ids[1]}",
            "/reports/team?role=llm-app-engineer",
            "/reports/team.csv?table=gaps",
            "/reports/team.pdf",
            "/api/v1/reports/team",
        ],
        "instructor": ["/reports/items", "/api/v1/reports/items"],
        "learner": ["/reports/me", "/api/v1/reports/me"],
    }
    if only:
        unknown = set(only) - {p for paths in pages.values() for p in paths}
        if unknown:
            raise SystemExit(f"--pages: not measured here: {sorted(unknown)}")
        pages = {who: [p for p in paths if p in only] for who, paths in pages.items()}
    out: dict[str, tuple[float, float, float]] = {}
    with TestClient(create_app(ctx)) as client:
        for who, email in logins.items():
            if not pages[who]:
                continue
            token = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()[
                "token"
            ]
            client.cookies.set("learnloop_session", token)
            for path in pages[who]:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code, response.text[:500])

                def cold(p: str = path) -> None:
                    plots.clear_cache()
                    client.get(p)

                cpu = time.process_time()
                fresh = statistics.median(timed(cold) for _ in range(repeat))
                cpu = (time.process_time() - cpu) / repeat
                cached = statistics.median(timed(lambda p=path: client.get(p)) for _ in range(repeat))
                out[path] = (fresh, cached, cpu)
                print(
                    f"  {path:45s} {fresh:7.3f} s  (plot cache warm: {cached:.3f} s; CPU {cpu:.3f} s)",
                    flush=True,
                )
    return out


def run_backend(
    name: str,
    url: str,
    data: Synthetic,
    pack: Pack,
    repeat: int,
    pack_dir: Path = PACK,
    reuse: bool = False,
    only: list[str] | None = None,
    pdf_baselines: list[str] | None = None,
) -> list[Record]:
    dataset = (
        f"synthetic org: {data.learners} learners, {data.user.size} answers, {data.teams} teams, ai_era pack"
    )
    records: list[Record] = []
    method = f"learnloop.{name}"
    migrate(url)
    ctx = AppContext(settings=Settings(database_url=url, default_pack=pack_dir))
    if reuse:  # loaded, backfilled and analysed by an earlier run of the same settings
        print(f"{name}: reusing the loaded database", flush=True)
        filled = _backfill_evidence(ctx)  # a database loaded before the evidence was stored
        if filled:
            print(f"{name}: stored the evidence of {filled} mastery rows", flush=True)
        records += evidence_backfill_records(ctx, dataset, method)
        if only == ["pdf-parts"]:
            return records + pdf_part_records(ctx, repeat, dataset, method, pdf_baselines)
        return records + _page_records(
            ctx, existing_staff(ctx, data.teams), data, repeat, dataset, method, only
        )
    import_pack(ctx, pack_dir)
    staff = create_staff(ctx, data.teams)
    tables = table_rows(data, staff, pack, "" if name == "sqlite" else "+00")
    get_engine(url).dispose()
    print(f"{name}: loading ...", flush=True)
    start = time.perf_counter()
    if name == "sqlite":
        load_sqlite(Path(url.removeprefix("sqlite:///")), tables)
    else:
        load_postgres(url, tables)
    load_s = time.perf_counter() - start
    print(f"{name}: loaded in {load_s:.0f} s", flush=True)
    records.append(
        record(dataset, "bulk load, secondary indexes rebuilt after", method, "load_seconds", load_s)
    )
    # The live loop counts each answer into its learner's tally; the bulk load bypasses it, so
    # the tallies are counted from the log as migration 0042 and learnloop rebuild do.
    tally_s = timed(lambda: _count_tallies(ctx))
    print(f"{name}: learner tallies counted in {tally_s:.1f} s", flush=True)
    records.append(
        record(
            dataset,
            "one-off: learner tallies counted from the bulk-loaded log",
            method,
            "tally_fill_seconds",
            tally_s,
        )
    )
    # The live loop stores each answer's evidence with mastery; bulk-loaded rows have none, so
    # it is filled from the log the way an upgraded installation does (rebuild --evidence).
    evidence_s = timed(lambda: _backfill_evidence(ctx))
    print(f"{name}: evidence stored in {evidence_s:.1f} s", flush=True)
    records.append(
        record(
            dataset,
            "one-off: the evidence the live loop stores with each answer, filled from the "
            "bulk-loaded log (learnloop rebuild --evidence)",
            method,
            "evidence_backfill_seconds",
            evidence_s,
        )
    )
    records += evidence_backfill_records(ctx, dataset, method)
    backfill = timed(lambda: ensure_weekly_snapshots(ctx, staff.org_id))
    print(f"{name}: trend snapshots backfilled in {backfill:.1f} s", flush=True)
    records.append(
        record(
            dataset,
            f"one-off: {ctx.settings.report_trend_weeks} weekly trend snapshots stored "
            "on the first team dashboard",
            method,
            "snapshot_backfill_seconds",
            backfill,
        )
    )
    analysis = timed(lambda: compute_item_report(ctx, staff.org_id))
    print(f"{name}: item analysis computed in {analysis:.1f} s", flush=True)
    records.append(
        record(
            dataset,
            f"item analysis over the newest {ctx.settings.report_item_window} answers, "
            "stored and reused until 5% more answers",
            method,
            "item_analysis_seconds",
            analysis,
        )
    )
    records += _page_records(ctx, staff, data, repeat, dataset, method, only)
    get_engine(url).dispose()
    return records


def _count_tallies(ctx: AppContext) -> None:
    from learnloop.services import learner_tally

    with ctx.session() as session:
        learner_tally.rebuild(session)


def _backfill_evidence(ctx: AppContext) -> int:
    from learnloop.services.mastery import backfill_evidence

    with ctx.session() as session:
        return backfill_evidence(session)


def evidence_backfill_records(ctx: AppContext, dataset: str, method: str) -> list[Record]:
    """Store the per-(learner, skill) evidence of mastery rows that have none (the bulk load
    writes mastery rows without it, as a database from before migration 0034 has them), as
    ``learnloop rebuild --evidence`` does: one fold of the log, once. Nothing to do (0 rows) on
    a database filled before."""
    from learnloop.services.mastery import backfill_evidence

    start, cpu = time.perf_counter(), time.process_time()
    with ctx.session() as session:
        filled = backfill_evidence(session)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"  evidence stored for {filled} mastery rows in {wall:.1f} s (CPU {cpu:.1f} s)", flush=True)
    if not filled:
        return []
    protocol = f"one-off, learnloop rebuild --evidence: {filled} mastery rows without stored evidence"
    return [
        record(dataset, protocol, method, "evidence_backfill_seconds", wall),
        record(dataset, protocol, method, "evidence_backfill_cpu_seconds", cpu),
    ]


def _plots_at(rev: str) -> ModuleType:
    """``learnloop/web/plots.py`` as of git revision ``rev``, loaded as a module of its own (the
    PDF's drawing code then; the report and the handler stay today's)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:learnloop/web/plots.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = f"_bench_plots_{rev}"
    module = ModuleType(name)
    module.__file__ = f"<learnloop/web/plots.py@{rev}>"
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own file
    return module


def _draw_team_pdf(report: Any, plots: ModuleType | None) -> bytes:
    """The team PDF drawn by today's handler, with ``plots`` (a baseline's) in place of today's."""
    from learnloop.web import routes_reports

    today = routes_reports.plots
    routes_reports.plots = plots or today  # type: ignore[assignment]
    try:
        return routes_reports._team_pdf(report)
    finally:
        routes_reports.plots = today


def pdf_part_records(
    ctx: AppContext, repeat: int, dataset: str, method: str, baselines: list[str] | None = None
) -> list[Record]:
    """The team PDF in its two parts: the report (the same service call the page makes) once,
    then drawing the PDF from it, ``repeat`` times per language (median). With ``baselines``
    (git revisions) the PDF is also drawn by each revision's plots.py, in turn with today's
    (the order reversed every other round), so all meet the same load on the shared machine."""
    from learnloop import i18n
    from learnloop.services import auth
    from learnloop.services.reports_team import team_report

    manager = auth.login(ctx, email="manager@bench.example", password=PASSWORD).user
    report = team_report(ctx, manager)  # warm-up: the pack and the model read and cached
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        report = team_report(ctx, manager)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    wall, report_cpu = statistics.median(walls), statistics.median(cpus)
    print(f"  team_report (whole organisation) {wall:7.3f} s (CPU {report_cpu:.3f} s)", flush=True)
    report_protocol = f"one call, whole organisation; median of {repeat} after one warm-up"
    records = [
        record(dataset, report_protocol, method, "team_report_seconds", wall),
        record(dataset, report_protocol, method, "team_report_cpu_seconds", report_cpu),
    ]
    versions: dict[str, ModuleType | None] = {method: None}
    for rev in baselines or []:
        versions[f"{method}, plots.py of {rev}"] = _plots_at(rev)
    protocol = f"median of {repeat} after one warm-up, from the report above; target (with the report) < 2 s"
    if baselines:
        protocol += f"; drawn in turn with plots.py of {', '.join(baselines)}"
    for language in ("en", "zh_CN"):
        i18n.set_locale(language)
        times: dict[str, list[float]] = {name: [] for name in versions}
        cpu_times: dict[str, list[float]] = {name: [] for name in versions}
        for plots in versions.values():
            _draw_team_pdf(report, plots)  # warm-up: fonts loaded and cached
        for k in range(repeat):
            order = list(versions.items())
            for name, plots in order[::-1] if k % 2 else order:
                start, cpu = time.perf_counter(), time.process_time()
                _draw_team_pdf(report, plots)
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu)
        for name in versions:
            drawn, drawn_cpu = statistics.median(times[name]), statistics.median(cpu_times[name])
            print(f"  team PDF drawn ({language}, {name}) {drawn:7.3f} s (CPU {drawn_cpu:.3f} s)", flush=True)
            records += [
                record(dataset, protocol, name, f"pdf_drawing_seconds {language}", drawn),
                record(dataset, protocol, name, f"pdf_drawing_cpu_seconds {language}", drawn_cpu),
                # what a manager waits for: the report, then the PDF drawn from it (target < 2 s)
                record(
                    dataset,
                    "team_report_seconds + median pdf_drawing_seconds; target < 2 s",
                    name,
                    f"report_plus_pdf_seconds {language}",
                    wall + drawn,
                ),
                record(
                    dataset,
                    "team_report_cpu_seconds + median pdf_drawing_cpu_seconds",
                    name,
                    f"report_plus_pdf_cpu_seconds {language}",
                    report_cpu + drawn_cpu,
                ),
            ]
    i18n.set_locale("en")
    return records


def _page_records(
    ctx: AppContext,
    staff: Staff,
    data: Synthetic,
    repeat: int,
    dataset: str,
    method: str,
    only: list[str] | None,
) -> list[Record]:
    protocol = (
        f"median of {repeat} GETs after one warm-up, TestClient in process, plots drawn afresh "
        "(plot cache cleared before each GET); target < 1 s (the PDF: < 2 s)"
    )
    cached = protocol.replace("plots drawn afresh (plot cache cleared before each GET)", "plot cache warm")
    cpu_protocol = f"CPU seconds of this process per GET (server and client), mean of the {repeat} fresh GETs"
    records = []
    for path, (fresh, warm, cpu) in measure_pages(ctx, staff, data, repeat, only).items():
        records.append(record(dataset, protocol, method, f"render_seconds {path}", fresh))
        records.append(record(dataset, cached, method, f"render_seconds_plot_cache {path}", warm))
        records.append(record(dataset, cpu_protocol, method, f"cpu_seconds {path}", cpu))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--answers", type=int, default=5_000_000)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pack", type=Path, default=PACK, help="the content pack (default: packs/ai_era)")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "var" / "bench")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LEARNLOOP_BENCH_POSTGRES_URL", ""),
        help="an empty database to use instead of a throw-away cluster",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; keep bench/results as it is")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="SQLite: measure the pages on the database an earlier run with the same settings left "
        "in --workdir (no load, backfill or item analysis)",
    )
    parser.add_argument(
        "--pages",
        default="",
        help="comma-separated paths to measure (default: all); with --reuse-db, 'pdf-parts' times the "
        "team report and the PDF drawn from it apart",
    )
    parser.add_argument(
        "--pdf-baseline",
        default="",
        help="with --pages pdf-parts: comma-separated git revisions; the team PDF is also drawn with "
        "learnloop/web/plots.py as of each, in turn with today's",
    )
    args = parser.parse_args()

    only = [p for p in args.pages.split(",") if p] or None
    if args.reuse_db and args.backends != "sqlite":
        raise SystemExit("--reuse-db works with --backends sqlite only")
    if args.pdf_baseline and not (args.reuse_db and only == ["pdf-parts"]):
        raise SystemExit("--pdf-baseline works with --reuse-db --pages pdf-parts only")
    load_before = os.getloadavg()
    pack = load_pack(args.pack)
    start = time.perf_counter()
    data = simulate(pack, args.learners, args.answers, args.teams, args.weeks, args.seed)
    generate_s = time.perf_counter() - start
    print(f"simulated {data.user.size} answers of {data.learners} learners in {generate_s:.0f} s", flush=True)
    dataset = (
        f"synthetic org: {data.learners} learners, {data.user.size} answers, {data.teams} teams, ai_era pack"
    )
    records = [
        record(
            dataset,
            "numpy simulation, vectorised over learners",
            "bench.dashboards",
            "generate_seconds",
            generate_s,
        )
    ]
    for backend in args.backends.split(","):
        if backend == "sqlite":
            args.workdir.mkdir(parents=True, exist_ok=True)
            path = args.workdir / "dashboards.db"
            if args.reuse_db and not path.is_file():
                raise SystemExit(f"--reuse-db: no database at {path}")
            if not args.reuse_db:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            records += run_backend(
                "sqlite",
                f"sqlite:///{path}",
                data,
                pack,
                args.repeat,
                args.pack,
                args.reuse_db,
                only,
                [rev for rev in args.pdf_baseline.split(",") if rev],
            )
        elif backend == "postgres":
            with contextlib.ExitStack() as stack:
                url = args.postgres_url or stack.enter_context(throwaway_postgres())
                records += run_backend("postgresql", url, data, pack, args.repeat, args.pack, only=only)
        else:
            raise SystemExit(f"unknown backend {backend!r}")
    load_after = os.getloadavg()
    if not args.no_write:
        path = write_results(
            "dashboards",
            records,
            ["numpy", "sqlalchemy", "pg8000", "matplotlib"],
            extra_environment={
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in load_after],
            },
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
