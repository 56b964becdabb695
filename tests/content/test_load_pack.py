"""load_pack validates a whole pack and lists every problem with file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from learnloop.content.loader import PackError, load_pack, pack_fingerprint, write_pack
from tests.conftest import DEFAULT_PACK, MINI_PACK


def _copy(tmp_path: Path, source: Path = MINI_PACK) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(source, target)
    return target


def test_mini_pack_loads() -> None:
    pack = load_pack(MINI_PACK)
    assert {i.kind for i in pack.items} == {"choice", "numeric", "text", "code"}


def test_every_problem_is_reported_with_file_and_line(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    skills = root / "skills.yaml"
    skills.write_text(
        skills.read_text()
        + """- id: basics.tokens
  name: Duplicate of tokens
  domain: basics
- id: apps.loop-a
  name: A
  domain: apps
  prerequisites: [apps.loop-b]
- id: apps.loop-b
  name: B
  domain: apps
  prerequisites: [apps.loop-a, basics.nowhere]
"""
    )
    items = root / "items" / "broken.yaml"
    items.write_text("""- id: broken.nokey
  skills: [basics.tokens]
  kind: choice
  stem: Which?
  options: {a: "A", b: "B"}
  explanation: Because.
  hints: ["h1", "h2"]
- id: broken.badkey
  skills: [basics.tokens]
  kind: choice
  stem: Which one?
  options: {a: "A", b: "B"}
  key: c
  explanation: Because.
  hints: ["h1", "h2"]
- id: broken.unknown-skill
  skills: [basics.unknown]
  kind: numeric
  stem: How many?
  answer: 3
  explanation: Three.
  hints: ["h1", "h2"]
""")
    with pytest.raises(PackError) as info:
        load_pack(root)
    text = "\n".join(str(p) for p in info.value.problems)
    assert "skills.yaml:12: duplicate skill id 'basics.tokens' (first at skills.yaml:1)" in text
    assert "unknown prerequisite 'basics.nowhere'" in text
    assert "prerequisite cycle" in text and "apps.loop-a" in text
    assert "items/broken.yaml:1: item 'broken.nokey'" in text and "choice item has no key" in text
    assert "items/broken.yaml:8:" in text and "key 'c' is not one of the options" in text
    assert "items/broken.yaml:16: item 'broken.unknown-skill': unknown skill 'basics.unknown'" in text
    assert len(info.value.problems) >= 6


def test_malformed_yaml_binary_and_missing_files(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "items" / "bad.yaml").write_text("- id: x\n  skills: [a\n  kind: choice\n")
    (root / "items" / "blob.yaml").write_bytes(b"\x00\x01\x02binary")
    (root / "roles.yaml").unlink()
    (root / "lessons" / "nofront.md").write_text("# no front matter\n")
    with pytest.raises(PackError) as info:
        load_pack(root)
    text = "\n".join(str(p) for p in info.value.problems)
    assert "items/bad.yaml:" in text and "invalid YAML" in text
    assert "items/blob.yaml: binary file" in text
    assert "missing roles.yaml" in text
    assert "lessons/nofront.md:1: lesson needs YAML front matter" in text


def test_missing_folder() -> None:
    with pytest.raises(PackError, match="does not exist"):
        load_pack("/no/such/pack")


@pytest.mark.parametrize("source", [MINI_PACK, DEFAULT_PACK], ids=["mini", "ai_era"])
def test_write_then_load_round_trips_meaning(tmp_path: Path, source: Path) -> None:
    pack = load_pack(source)
    write_pack(pack, tmp_path / "out")
    again = load_pack(tmp_path / "out")
    assert again == pack
    assert pack_fingerprint(again) == pack_fingerprint(pack)
    # A second export of the re-read pack is byte-identical to the first.
    write_pack(again, tmp_path / "out2")
    for first in sorted((tmp_path / "out").rglob("*")):
        if first.is_file():
            assert (
                first.read_bytes() == (tmp_path / "out2" / first.relative_to(tmp_path / "out")).read_bytes()
            )
