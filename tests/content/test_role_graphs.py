"""Role graphs fit their roles: a role's targets do not drag in unrelated prerequisites, and a
prerequisite that serves only some roles is a recommended (non-gating) skill instead."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from learnloop.content.graph import prerequisite_closure
from learnloop.content.loader import PackError, load_pack
from tests.conftest import DEFAULT_PACK, MINI_PACK

PACK = load_pack(DEFAULT_PACK)
GRAPH = {s.id: list(s.prerequisites) for s in PACK.skills}


def _extra(role_id: str) -> set[str]:
    role = PACK.role(role_id)
    return prerequisite_closure(GRAPH, role.targets) - set(role.targets)


@pytest.mark.parametrize("role", PACK.roles, ids=[r.id for r in PACK.roles])
def test_a_role_needs_few_skills_beyond_its_targets(role) -> None:  # type: ignore[no-untyped-def]
    extra = _extra(role.id)
    assert len(extra) <= max(2, math.ceil(len(role.targets) / 3)), f"{role.id} also needs {sorted(extra)}"


def test_product_manager_and_literate_professional_skip_engineering_foundations() -> None:
    assert not _extra("ai-product-manager") & {"ml.python-data", "rag.vector-search", "llm.embeddings"}
    assert "data.collection" not in _extra("ai-literate-professional")
    # the engineers still reach those skills: they target them
    engineer = PACK.role("llm-app-engineer").targets
    assert {"rag.vector-search", "llm.embeddings", "ml.python-data"} <= set(engineer)


def test_recommended_skills_are_checked(tmp_path: Path) -> None:
    root = tmp_path / "pack"
    shutil.copytree(MINI_PACK, root)
    skills = root / "skills.yaml"
    text = skills.read_text()
    first = load_pack(MINI_PACK).skills[0]
    skills.write_text(
        text.replace(
            f"- id: {first.id}\n", f"- id: {first.id}\n  recommended: [nowhere.skill, {first.id}]\n", 1
        )
    )
    with pytest.raises(PackError) as info:
        load_pack(root)
    problems = "\n".join(str(p) for p in info.value.problems)
    assert "skills.yaml:1:" in problems and "'nowhere.skill' is unknown" in problems
    assert f"recommended skill {first.id!r} is unknown or itself" in problems
