"""learnloop.interop.rdfc against the W3C RDF Dataset Canonicalization (RDFC-1.0) test suite:
every approved evaluation test's canonical N-Quads, its issued-identifier map where the suite
has one, the SHA-384 test, and the poison (clique) graph that must fail rather than run on.

The test files are copied unchanged into ``data/rdfc/`` (source and licence: its README.md)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from learnloop.interop import rdfc

DATA = Path(__file__).parent / "data" / "rdfc"
MANIFEST = list(csv.DictReader((DATA / "manifest.csv").open(encoding="utf-8")))

_TERM = re.compile(r'<[^>]*>|_:[^\s]+|"(?:[^"\\]|\\.)*"(?:@[A-Za-z0-9-]+|\^\^<[^>]*>)?')
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[tbnrf\"'\\])")
_SIMPLE = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        return chr(int(code[1:], 16)) if code[0] in "uU" else _SIMPLE[code]

    return _ESCAPE.sub(one, text)


def _term(raw: str) -> str:
    """A term of the test's input N-Quads, in the form rdfc takes (canonical escapes)."""
    if raw.startswith("<"):
        return f"<{_unescape(raw[1:-1])}>"
    if raw.startswith("_:"):
        return raw
    end = raw.rindex('"')
    lexical, suffix = _unescape(raw[1:end]), raw[end + 1 :]
    if suffix.startswith("@"):
        return rdfc.literal(lexical, language=suffix[1:])
    if suffix.startswith("^^"):
        return rdfc.literal(lexical, datatype=_unescape(suffix[3:-1]))
    return rdfc.literal(lexical)


def parse_nquads(text: str) -> list[rdfc.Quad]:
    quads = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        terms = _TERM.findall(line)
        if len(terms) not in (3, 4) or not line.rstrip().endswith("."):
            raise AssertionError(f"line {number} is not an N-Quad: {line}")
        s, p, o = (_term(t) for t in terms[:3])
        quads.append((s, p, o, _term(terms[3]) if len(terms) == 4 else ""))
    return quads


def _algorithm(row: dict[str, str]) -> str:
    return {"": "sha256", "SHA256": "sha256", "SHA384": "sha384"}[row["hashAlgorithm"]]


POSITIVE = [r for r in MANIFEST if r["rdfc10"] == "TRUE"]
NEGATIVE = [r for r in MANIFEST if r["rdfc10"] == "RDFC10NegativeEvalTest"]


def test_the_suite_is_all_there() -> None:
    assert len(POSITIVE) == 64 and len(NEGATIVE) == 1
    assert sum(r["rdfc10map"] == "TRUE" for r in POSITIVE) == 21
    assert {r["hashAlgorithm"] for r in POSITIVE} == {"", "SHA384"}


@pytest.mark.parametrize("row", POSITIVE, ids=[r["test"] for r in POSITIVE])
def test_w3c_rdfc10_evaluation(row: dict[str, str]) -> None:
    name = row["test"]
    quads = parse_nquads((DATA / f"{name}-in.nq").read_text(encoding="utf-8"))
    expected = (DATA / f"{name}-rdfc10.nq").read_text(encoding="utf-8")
    assert rdfc.canonicalize(quads, algorithm=_algorithm(row)) == expected
    if row["rdfc10map"] == "TRUE":
        wanted = json.loads((DATA / f"{name}-rdfc10map.json").read_text(encoding="utf-8"))
        labels = rdfc.canonical_labels(list(dict.fromkeys(quads)), algorithm=_algorithm(row))
        assert {k.removeprefix("_:"): v.removeprefix("_:") for k, v in labels.items()} == wanted


def test_w3c_poison_graph_fails_instead_of_running_on() -> None:
    (row,) = NEGATIVE
    quads = parse_nquads((DATA / f"{row['test']}-in.nq").read_text(encoding="utf-8"))
    with pytest.raises(rdfc.RdfcError, match="poison"):
        rdfc.canonicalize(quads)


def test_labels_and_order_of_the_input_do_not_matter() -> None:
    quads = parse_nquads((DATA / "test024-in.nq").read_text(encoding="utf-8"))
    renamed = [tuple(t.replace("_:e", "_:x") for t in q) for q in reversed(quads)]
    assert renamed != quads
    assert rdfc.canonicalize(renamed) == rdfc.canonicalize(quads)  # type: ignore[arg-type]


def test_terms_are_written_in_canonical_form_and_bad_iris_refused() -> None:
    assert rdfc.literal('a\tb\x0c\x01\x7f"\\') == '"a\\tb\\f\\u0001\\u007F\\"\\\\"'
    assert rdfc.literal("x", datatype=rdfc.XSD_STRING) == '"x"'
    assert rdfc.literal("x", language="en") == '"x"@en'
    assert rdfc.literal("5", datatype="http://www.w3.org/2001/XMLSchema#integer") == (
        '"5"^^<http://www.w3.org/2001/XMLSchema#integer>'
    )
    with pytest.raises(rdfc.RdfcError, match="not an absolute IRI"):
        rdfc.iri("http://example.org/a b")
    with pytest.raises(rdfc.RdfcError, match="unsupported hash"):
        rdfc.canonicalize([], algorithm="md5")
