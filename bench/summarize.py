"""Build bench/README.md from every bench/results/*.json: one table per claim.

python -m bench.summarize
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

#: Per-parameter values (a[1], d[12]...) stay in the JSON; the tables show summary metrics.
PARAMETER_METRIC = re.compile(r"^[a-z]+\[\d+\]$")
RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"

INTRO = """# Benchmarks

Each claim of Learnloop's science is measured by one script here, against the named peer
libraries in the same run and against published figures. Each script writes
`results/<claim>.json` (command, date, environment, records); this page is generated from
those files by `python -m bench.summarize`. Peers are marked *(peer)*; published figures
carry their source. Timings are from the 2-core machine named in each file's environment.
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _table(records: list[dict[str, Any]]) -> list[str]:
    grouped: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    metrics: list[str] = []
    for rec in records:
        if PARAMETER_METRIC.match(str(rec["metric"])):
            continue
        method = rec["method"] + (" *(peer)*" if rec.get("peer") else "")
        if rec.get("source"):
            method += f" — {rec['source']}"
        grouped[(rec["dataset"], rec.get("protocol", ""))].setdefault(method, {})[rec["metric"]] = rec[
            "value"
        ]
        if rec["metric"] not in metrics:
            metrics.append(rec["metric"])
    lines: list[str] = []
    for (dataset, protocol), methods in grouped.items():
        used = [m for m in metrics if any(m in v for v in methods.values())]
        if not used:
            continue
        lines.append(f"**{dataset}** — {protocol}\n")
        lines.append("| method | " + " | ".join(used) + " |")
        lines.append("|---|" + "---|" * len(used))
        for method, values in methods.items():
            lines.append(f"| {method} | " + " | ".join(_fmt(values.get(m, "")) for m in used) + " |")
        lines.append("")
    return lines


def main() -> None:
    out = [INTRO]
    for path in sorted(RESULTS.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        env = ", ".join(f"{k} {v}" for k, v in doc.get("environment", {}).items() if v is not None)
        out.append(f"## {path.stem}\n")
        out.append(
            f"Command: `{doc.get('command', '')}`  \nDate: {doc.get('date', '')}  \nEnvironment: {env}\n"
        )
        out.extend(_table(doc.get("records", [])))
    README.write_text("\n".join(out), encoding="utf-8")
    print(f"wrote {README}")


if __name__ == "__main__":
    main()
