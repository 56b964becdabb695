"""List messages without a Simplified Chinese translation, or add translations from a JSON file.

    pybabel extract -F babel.cfg -k _ -k gettext_ -k ngettext_:1,2 -o /tmp/m.pot .
    python scripts/i18n_missing.py /tmp/m.pot                 # print what is missing
    python scripts/i18n_missing.py /tmp/m.pot new.json        # add {"msgid": "译文", ...}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parents[1] / "learnloop/locale/zh_CN/LC_MESSAGES/messages.po"


def main() -> None:
    with open(sys.argv[1], "rb") as fh:
        pot = read_po(fh)
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    new = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")) if len(sys.argv) > 2 else {}
    missing = []
    for message in pot:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        existing = catalog.get(message.id)
        if existing is not None and existing.string and (isinstance(existing.string, str) or all(existing.string)):
            continue
        if key in new:
            string = new[key] if isinstance(message.id, str) else (new[key],)
            catalog.add(message.id, string, locations=message.locations)
        else:
            missing.append(key)
    if new:
        with PO.open("wb") as fh:
            write_po(fh, catalog, width=100)
    for key in missing:
        print(json.dumps(key, ensure_ascii=False))


if __name__ == "__main__":
    main()
