"""``load_pack`` remembers a loaded folder by its files' names and bytes: a change to any file is
read at once, and every caller gets a pack of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from learnloop.content.loader import PackError, load_pack
from tests.conftest import MINI_PACK


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(MINI_PACK, tmp_path / "pack"))


def test_a_changed_file_is_read_again_even_at_the_same_size(folder: Path) -> None:
    skills = folder / "skills.yaml"
    assert load_pack(folder).skill("basics.tokens").name == "Tokens"
    text = skills.read_text()
    skills.write_text(text.replace("name: Tokens", "name: Tokenz", 1))  # same size, same second
    assert skills.stat().st_size == len(text.encode())
    assert load_pack(folder).skill("basics.tokens").name == "Tokenz"


def test_each_caller_gets_its_own_pack(folder: Path) -> None:
    first = load_pack(folder)
    first.skills.clear()
    first.items[0].stem = "changed by the first caller"
    second = load_pack(folder)
    assert second is not first
    assert second.skills and second.items[0].stem != "changed by the first caller"
    assert second == load_pack(MINI_PACK)


def test_a_pack_that_became_broken_is_refused(folder: Path) -> None:
    load_pack(folder)
    (folder / "roles.yaml").unlink()
    with pytest.raises(PackError, match="missing roles.yaml"):
        load_pack(folder)
    (folder / "roles.yaml").write_text((MINI_PACK / "roles.yaml").read_text())
    (folder / "items" / "basics.yaml").write_text("- id: [unclosed\n")
    with pytest.raises(PackError, match="basics.yaml"):
        load_pack(folder)


def test_a_new_file_is_seen(folder: Path) -> None:
    before = len(load_pack(folder).items)
    text = (folder / "items" / "apps.yaml").read_text()
    (folder / "items" / "apps.yaml").unlink()
    assert len(load_pack(folder).items) < before
    (folder / "items" / "zz.yaml").write_text(text)
    assert len(load_pack(folder).items) == before
