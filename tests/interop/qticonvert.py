"""Run in the test-only environment .venv-interop (scripts/_interop_peers.sh), never imported
by Learnloop: Citolab's QTI converter (citolab-qti-convert, GPL-3.0-only) takes a QTI 3.0
package down to QTI 2.1 and back up to 3.0.

    python qticonvert.py IN3.zip OUT21.zip OUT3.zip

prints the converter's warnings as JSON lines."""

from __future__ import annotations

import json
import sys

from qti_convert import downgrade_package, upgrade_package


def main(source: str, qti21: str, qti3: str) -> int:
    down = downgrade_package(source, qti21)
    for w in getattr(down, "warnings", []) or []:
        print(json.dumps({"step": "3.0->2.1", "warning": str(w)}))
    up = upgrade_package(qti21, qti3)
    for w in getattr(up, "warnings", []) or []:
        print(json.dumps({"step": "2.1->3.0", "warning": str(w)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
