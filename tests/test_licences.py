"""No GPL or LGPL in the install: every distribution the product's extras pull in, as installed.

The product is Learnloop with its runtime extras (``postgres``, ``llm``, ``serving``, ``deep``,
``memory-fit``, ``dist``); ``dev`` and ``bench`` are the tests' and benchmarks' tools, not shipped.
The test walks the requirement closure from the installed ``learnloop`` metadata (extras and
markers evaluated), reads each installed distribution's licence metadata (the SPDX
``License-Expression``, the ``License`` field, the trove classifiers) and fails on any that
declares GPL, LGPL or AGPL, unless :data:`ALLOWED` names it with the reason.
"""

from __future__ import annotations

import importlib.metadata as md
import re

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: extras that are tooling for tests and benchmarks, not part of what an operator installs
NOT_SHIPPED = {"dev", "bench"}

#: distribution -> why its GPL mention is not a GPL licence of what we install
ALLOWED: dict[str, str] = {}

#: only the licence's own text, never a description: "GPL" as a word, or GNU's licences by name
_COPYLEFT = re.compile(
    r"(?<![A-Za-z])(?:A|L)?GPL(?![A-Za-z])|GNU (?:Affero |Lesser |Library )?General Public", re.IGNORECASE
)
#: the GCC runtime library exception lets anyone ship the runtime (libgfortran, libgomp) bundled
#: in numpy and scipy wheels with any program: not copyleft for what links to it
_GCC_EXCEPTION = re.compile(r"GPL-3\.0(?:-or-later)?\s+WITH\s+GCC-exception-3\.1", re.IGNORECASE)


def _licence_texts(dist: md.Distribution) -> list[str]:
    meta = dist.metadata
    texts = list(meta.get_all("License-Expression") or [])
    licence = "".join(meta.get_all("License") or [])
    if len(licence) < 400:  # a short name; a long field is the licence's full text, often
        texts.append(licence)  # listing others it is compatible with, so not read as a claim
    texts += [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return [t for t in texts if t]


def copyleft(dist: md.Distribution) -> list[str]:
    """The licence statements of ``dist`` that declare GPL/LGPL/AGPL (empty when none)."""
    found = []
    for text in _licence_texts(dist):
        if _COPYLEFT.search(_GCC_EXCEPTION.sub("", text)):
            found.append(text)
    return found


def product_closure() -> dict[str, md.Distribution]:
    """Every installed distribution the product's extras require, directly or not."""
    root = md.distribution("learnloop")
    extras: set[str] = {canonicalize_name(e) for e in root.metadata.get_all("Provides-Extra") or []}
    extras -= NOT_SHIPPED
    seen: dict[str, md.Distribution] = {}
    todo: list[tuple[md.Distribution, set[str]]] = [(root, extras)]
    base_env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    while todo:
        dist, wanted = todo.pop()
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not any(
                req.marker.evaluate({**base_env, "extra": e}) for e in (wanted | {""})
            ):
                continue
            name = canonicalize_name(req.name)
            if name == "learnloop":  # an extra naming another of ours: its requirements are walked
                continue
            try:
                found = md.distribution(req.name)
            except md.PackageNotFoundError:
                continue  # an extra this environment did not install (test.sh installs them all)
            key = f"{name}[{','.join(sorted(req.extras))}]"
            if key in seen:
                continue
            seen[key] = found
            todo.append((found, {str(canonicalize_name(e)) for e in req.extras}))
    return {canonicalize_name(d.metadata["Name"]): d for d in seen.values()}


def test_the_copyleft_check_recognises_gpl_and_lgpl_statements() -> None:
    class Fake(md.Distribution):
        def __init__(self, fields: str) -> None:
            self.fields = fields

        def read_text(self, filename: str) -> str | None:
            return self.fields if filename in ("METADATA", "PKG-INFO") else None

        def locate_file(self, path):  # type: ignore[no-untyped-def]
            return path

    lgpl = Fake(
        "Name: x\nClassifier: License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)\n"
    )
    gpl = Fake("Name: y\nLicense-Expression: GPL-2.0-or-later\n")
    gcc = Fake("Name: z\nLicense-Expression: BSD-3-Clause AND GPL-3.0-or-later WITH GCC-exception-3.1\n")
    mit = Fake("Name: w\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n")
    assert copyleft(lgpl) and copyleft(gpl)
    assert not copyleft(gcc) and not copyleft(mit)


def test_no_installed_distribution_of_the_product_declares_gpl_or_lgpl() -> None:
    closure = product_closure()
    for required in ("sqlalchemy", "pg8000", "fastapi"):  # the walk found the core and the driver
        assert required in closure, f"{required} is not installed: pip install -e '.[postgres]'"
    offenders = {
        name: statements
        for name, dist in sorted(closure.items())
        if (statements := copyleft(dist)) and name not in ALLOWED
    }
    assert not offenders, f"GPL/LGPL in the product's install: {offenders}"


def test_the_old_lgpl_postgres_stack_is_not_required() -> None:
    closure = product_closure()
    # and PyLD, whose every release imports frozendict (LGPL-3.0): interop/vc.py uses pyoxigraph
    for name in ("psycopg", "psycopg-binary", "psycopg-pool", "procrastinate", "pyld", "frozendict"):
        assert name not in closure, f"{name} is required again by {closure.get(name)}"
