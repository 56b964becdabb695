"""Provenance on every item and lesson: who wrote and reviewed it, when, from what, and its status."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from learnloop.content.loader import PackError, load_pack
from learnloop.content.models import Provenance
from tests.conftest import DEFAULT_PACK, MINI_PACK


def test_default_pack_states_provenance_everywhere() -> None:
    pack = load_pack(DEFAULT_PACK)
    assert pack.meta.require_provenance
    lesson_ids = {lesson.id for lesson in pack.lessons}
    for item in pack.items:
        prov = item.provenance
        assert prov is not None, item.id
        assert prov.sources, item.id
        assert all(ref in lesson_ids for ref in prov.lesson_refs()), item.id
        if prov.status == "reviewed":
            assert prov.reviewers and prov.reviewed is not None, item.id
    for lesson in pack.lessons:
        assert lesson.provenance is not None and lesson.further_reading, lesson.id


def test_provenance_rules() -> None:
    ok = {"author": "Content team", "sources": ["lesson.basics.tokens"]}
    assert Provenance.model_validate(ok).status == "draft"
    with pytest.raises(ValueError, match="someone other than the author"):
        Provenance.model_validate({**ok, "reviewers": ["content team"], "reviewed": "2026-01-02"})
    with pytest.raises(ValueError, match="needs at least one reviewer"):
        Provenance.model_validate({**ok, "status": "reviewed"})
    with pytest.raises(ValueError, match="needs the reviewers"):
        Provenance.model_validate({**ok, "reviewed": "2026-01-02"})
    with pytest.raises(ValueError, match="in the future"):
        Provenance.model_validate({**ok, "reviewers": ["Review board"], "reviewed": "2999-01-01"})
    with pytest.raises(ValueError, match="neither a lesson id"):
        Provenance.model_validate({**ok, "sources": ["the internet"]})
    with pytest.raises(ValueError, match="at least 1 item"):
        Provenance.model_validate({**ok, "sources": []})
    full_reference = "Lewis et al. (2020). Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks."
    assert Provenance.model_validate({**ok, "sources": [full_reference, "https://example.org/a"]})


def test_a_name_split_by_an_unquoted_comma_is_refused() -> None:
    """YAML reads ``[Review (model-assisted, reviewer B)]`` as two names; the loader says to quote it."""
    import yaml

    split = yaml.safe_load("reviewers: [Content review (model-assisted, reviewer B)]")["reviewers"]
    assert split == ["Content review (model-assisted", "reviewer B)"]
    reviewed = {"author": "Content team", "sources": ["lesson.basics.tokens"], "reviewed": "2026-01-02"}
    with pytest.raises(ValueError, match="unbalanced parentheses: quote a name"):
        Provenance.model_validate({**reviewed, "reviewers": split})
    with pytest.raises(ValueError, match="unbalanced parentheses"):
        Provenance.model_validate({**reviewed, "author": "Content team (model-assisted"})
    quoted = yaml.safe_load('reviewers: ["Content review (model-assisted, reviewer B)"]')["reviewers"]
    assert Provenance.model_validate({**reviewed, "reviewers": quoted}).reviewers == quoted


def test_missing_and_bad_provenance_listed_by_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "pack"
    shutil.copytree(MINI_PACK, root)
    meta = root / "pack.yaml"
    meta.write_text(meta.read_text() + "require_provenance: true\n")
    (root / "items" / "prov.yaml").write_text(
        """- id: prov.bad-source
  skills: [basics.tokens]
  kind: numeric
  stem: How many?
  answer: 3
  explanation: Three.
  hints: ["h1", "h2"]
  provenance:
    author: Content team
    sources: [lesson.does-not-exist]
- id: prov.self-review
  skills: [basics.tokens]
  kind: numeric
  stem: How many more?
  answer: 4
  explanation: Four.
  hints: ["h1", "h2"]
  provenance:
    author: Content team
    reviewers: [Content team]
    reviewed: 2026-01-02
    sources: [https://example.org/x]
    status: reviewed
"""
    )
    with pytest.raises(PackError) as info:
        load_pack(root)
    text = "\n".join(str(p) for p in info.value.problems)
    assert "items/prov.yaml:1: item 'prov.bad-source': source 'lesson.does-not-exist' is not a lesson" in text
    assert "items/prov.yaml:19: item 'prov.self-review': provenance: a reviewer must be someone other" in text
    # the mini pack's own items and lessons have none: each is listed with its line
    assert "items/basics.yaml:" in text and "no provenance" in text
    assert "lessons/" in text and "no further_reading" in text
