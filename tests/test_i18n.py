"""Every user-facing message in code and templates has a Simplified Chinese translation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from learnloop import i18n

ROOT = Path(__file__).resolve().parents[1]


def test_catalogue_covers_every_message(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_",
            "-k",
            "gettext_",
            "-k",
            "ngettext_:1,2",
            "-o",
            str(pot),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    with pot.open("rb") as fh:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    with (i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (m.string if isinstance(m.string, str) else all(m.string)) and not m.fuzzy
    }
    assert wanted, "nothing was extracted"
    assert not wanted - translated, f"untranslated: {sorted(wanted - translated)}"


def test_translation_is_used_per_locale() -> None:
    i18n.set_locale("zh_CN")
    assert i18n.gettext_("Practice") == "练习"
    i18n.set_locale("en")
    assert i18n.gettext_("Practice") == "Practice"
    assert i18n.negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
