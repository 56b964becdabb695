"""The command line: exit 2 with every problem listed on bad input; import/export/rebuild/demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MINI_PACK


def run(args: list[str], db: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "LEARNLOOP_DATABASE_URL": f"sqlite:///{db}",
        "LEARNLOOP_DEFAULT_PACK": str(MINI_PACK),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "learnloop.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=240,
    )


def test_import_broken_pack_lists_every_problem_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert run(["init"], db).returncode == 0
    broken = tmp_path / "broken"
    shutil.copytree(MINI_PACK, broken)
    (broken / "items" / "basics.yaml").write_text(
        (broken / "items" / "basics.yaml").read_text().replace("key: b", "key: q").replace("answer: 1.0", "")
    )
    (broken / "skills.yaml").write_text(
        (broken / "skills.yaml").read_text() + "- id: x.y\n  name: X\n  domain: zz\n"
    )
    done = run(["import", str(broken)], db)
    assert done.returncode == 2
    assert "items/basics.yaml:1: item 'basics.tokens.count'" in done.stderr
    assert "items/basics.yaml:10: item 'basics.tokens.cost'" in done.stderr and "no answer" in done.stderr
    assert "skills.yaml:12: skill 'x.y': unknown domain 'zz'" in done.stderr
    summary = run(["export", str(tmp_path / "after")], db)
    assert summary.returncode == 0
    assert "6 items" in summary.stdout


def test_export_import_round_trip_and_rebuild(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert run(["init"], db).returncode == 0
    assert run(["export", str(tmp_path / "exported")], db).returncode == 0
    again = run(["import", str(tmp_path / "exported")], db)
    assert again.returncode == 0 and "unchanged" in again.stdout
    rebuilt = run(["rebuild", "--check"], db)
    assert rebuilt.returncode == 0 and "equals" in rebuilt.stdout
    filled = run(["rebuild", "--evidence"], db)  # nothing from before 0034 in a new database
    assert filled.returncode == 0 and "stored the evidence of 0 mastery rows" in filled.stdout


def test_unknown_path_is_a_clean_error(tmp_path: Path) -> None:
    done = run(["import", str(tmp_path / "missing")], tmp_path / "x.db")
    assert done.returncode == 2 and "error:" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("pack", ["default"])
def test_demo_creates_learners_with_histories(tmp_path: Path, pack: str) -> None:
    db = tmp_path / "demo.db"
    env = {"LEARNLOOP_DEFAULT_PACK": str(Path(__file__).resolve().parents[1] / "packs" / "ai_era")}
    done = run(["demo", "--learners", "50"], db, **env)
    assert done.returncode == 0, done.stderr
    assert "50 learners" in done.stdout
    import sqlite3

    con = sqlite3.connect(db)
    n_learners = con.execute("select count(distinct user_id) from responses").fetchone()[0]
    n_teams = con.execute("select count(*) from teams").fetchone()[0]
    stored = con.execute("select item_id, kind, answer, correct from responses").fetchall()
    con.close()
    assert n_learners == 50 and n_teams >= 3
    # a stored choice or number agrees with the stored grade, so item analysis reads real options
    import json

    from learnloop.content.loader import load_pack
    from learnloop.content.scoring import score_answer

    bank = {i.id: i for i in load_pack(env["LEARNLOOP_DEFAULT_PACK"]).items}
    scored = [(bank[i], json.loads(a), bool(c)) for i, k, a, c in stored if k in ("choice", "numeric")]
    assert scored and all(score_answer(item, answer).correct is c for item, answer, c in scored)
    wrong_choices = {a["choice"] for item, a, c in scored if item.kind == "choice" and not c}
    assert len(wrong_choices) >= 3
    assert run(["rebuild", "--check"], db, **env).returncode == 0


def test_fit_irt_calibrates_items_from_the_demo_log(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = {"LEARNLOOP_DEFAULT_PACK": str(Path(__file__).resolve().parents[1] / "packs" / "ai_era")}
    assert run(["demo", "--learners", "60"], db, **env).returncode == 0
    done = run(["fit", "irt", "--min-responses", "10"], db, **env)
    assert done.returncode == 0, done.stderr
    assert "items calibrated" in done.stdout
    import json
    import math
    import sqlite3

    con = sqlite3.connect(db)
    params = json.loads(
        con.execute("select params from model_params where kind like 'irt.org.%'").fetchone()[0]
    )
    con.close()
    assert params["items"], "no item had enough answers"
    for p in params["items"].values():
        assert all(math.isfinite(p[k]) for k in ("a", "b", "c")) and p["a"] > 0


def test_fit_irt_on_empty_log_is_a_clean_error(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    assert run(["init"], db).returncode == 0
    done = run(["fit", "irt"], db)
    assert done.returncode == 2 and "no answers" in done.stderr


def test_fit_kt_stores_params_and_keeps_rebuild_equal(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = {"LEARNLOOP_DEFAULT_PACK": str(Path(__file__).resolve().parents[1] / "packs" / "ai_era")}
    assert run(["demo", "--learners", "50"], db, **env).returncode == 0
    done = run(["fit", "kt"], db, **env)
    assert done.returncode == 0, done.stderr
    assert "skills fitted" in done.stdout
    import json
    import sqlite3

    con = sqlite3.connect(db)
    params = json.loads(
        con.execute("select params from model_params where kind like 'kt.org.%'").fetchone()[0]
    )["bkt"]
    con.close()
    assert params["skills"] and all(
        0 < p["p_guess"] <= 0.3 and 0 < p["p_slip"] <= 0.3 for p in params["skills"].values()
    )
    assert set(params["skills"]) <= {s.strip() for s in params["skills"]}  # product skill ids, not codes
    assert any("." in skill for skill in params["skills"])
    assert run(["rebuild", "--check"], db, **env).returncode == 0
