"""RDF Dataset Canonicalization (W3C RDFC-1.0, Recommendation of 21 May 2024).

Input: the quads of a dataset, each ``(subject, predicate, object, graph)`` with every term
already in N-Quads syntax (``<iri>``, ``_:label``, ``"lexical"``, ``"lexical"@lang``,
``"lexical"^^<datatype>``; :func:`iri`, :func:`blank` and :func:`literal` write them) and the
graph ``""`` for the default graph. Output: the canonical N-Quads document (sorted lines, each
ending in a newline) and the map from input blank node labels to canonical ones.

The algorithm follows the specification's sections 4.4-4.8: first-degree hashes issue
canonical identifiers to the blank nodes they tell apart, the rest are ordered by their
N-degree hashes (the permutation search over related blank nodes). A dataset that makes that
search explode (a "poison" graph) fails with :class:`RdfcError` once the number of N-degree
hash computations passes ``max_work`` instead of running for hours (specification 4.4.1).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Quad = tuple[str, str, str, str]

#: characters escaped in canonical N-Quads literals (RDF 1.2 N-Quads, section "Canonical form")
_ECHAR = {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
DEFAULT_MAX_WORK = 2000


class RdfcError(ValueError):
    """A dataset that cannot be canonicalised (malformed, or too costly: a poison graph)."""


def escape(text: str) -> str:
    """``text`` as the inside of a canonical N-Quads string literal."""
    out = []
    for ch in text:
        if ch in _ECHAR:
            out.append(_ECHAR[ch])
        elif ch <= "\x1f" or ch == "\x7f":
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def iri(value: str) -> str:
    if any(c in value for c in '<>"{}|^`\\') or any(c <= " " for c in value):
        raise RdfcError(f"not an absolute IRI: {value[:200]!r}")
    return f"<{value}>"


def blank(label: str) -> str:
    return f"_:{label}"


def literal(lexical: str, datatype: str | None = None, language: str | None = None) -> str:
    """A literal in canonical N-Quads form (``xsd:string`` is written without its datatype)."""
    quoted = f'"{escape(lexical)}"'
    if language:
        return f"{quoted}@{language}"
    if datatype and datatype not in (XSD_STRING, RDF_LANGSTRING):
        return f"{quoted}^^{iri(datatype)}"
    return quoted


def _is_blank(term: str) -> bool:
    return term.startswith("_:")


def serialize(quad: Quad) -> str:
    s, p, o, g = quad
    return f"{s} {p} {o} {g} .\n" if g else f"{s} {p} {o} .\n"


@dataclass
class _Issuer:
    """Identifier issuer (specification 4.3): ``prefix`` + counter, in issue order."""

    prefix: str
    issued: dict[str, str] = field(default_factory=dict)

    def issue(self, existing: str) -> str:
        if existing not in self.issued:
            self.issued[existing] = f"{self.prefix}{len(self.issued)}"
        return self.issued[existing]

    def copy(self) -> _Issuer:
        return _Issuer(self.prefix, dict(self.issued))


class _State:
    def __init__(self, quads: list[Quad], digest: Callable[[bytes], Any], max_work: int) -> None:
        self.digest = digest
        self.max_work = max_work
        self.work = 0
        self.canonical = _Issuer("_:c14n")
        self.quads_of: dict[str, list[Quad]] = {}
        for quad in quads:
            for term in (quad[0], quad[2], quad[3]):
                if _is_blank(term):
                    listed = self.quads_of.setdefault(term, [])
                    if not listed or listed[-1] is not quad:
                        listed.append(quad)
        self.first_degree: dict[str, str] = {}

    def hash(self, text: str) -> str:
        return self.digest(text.encode()).hexdigest()

    def hash_first_degree(self, node: str) -> str:
        """Specification 4.6: the node's quads with it as ``_:a`` and other blank nodes ``_:z``."""
        if node not in self.first_degree:
            lines = sorted(
                serialize(
                    tuple(  # type: ignore[arg-type]
                        ("_:a" if t == node else "_:z") if _is_blank(t) else t for t in quad
                    )
                )
                for quad in self.quads_of[node]
            )
            self.first_degree[node] = self.hash("".join(lines))
        return self.first_degree[node]

    def hash_related(self, related: str, quad: Quad, issuer: _Issuer, position: str) -> str:
        """Specification 4.7."""
        if related in self.canonical.issued:
            ident = self.canonical.issued[related]
        elif related in issuer.issued:
            ident = issuer.issued[related]
        else:
            ident = self.hash_first_degree(related)
        text = position + (quad[1] if position != "g" else "") + ident
        return self.hash(text)

    def hash_n_degree(self, node: str, issuer: _Issuer) -> tuple[str, _Issuer]:
        """Specification 4.8: the hash of ``node``'s paths to the blank nodes related to it."""
        self.work += 1
        if self.work > self.max_work:
            raise RdfcError(
                f"canonicalisation needs more than {self.max_work} N-degree hashes (a poison graph?)"
            )
        related_by_hash: dict[str, list[str]] = {}
        for quad in self.quads_of[node]:
            for term, position in ((quad[0], "s"), (quad[2], "o"), (quad[3], "g")):
                if _is_blank(term) and term != node:
                    related_by_hash.setdefault(self.hash_related(term, quad, issuer, position), []).append(
                        term
                    )
        data = ""
        for related_hash in sorted(related_by_hash):
            data += related_hash
            chosen_path = ""
            chosen_issuer: _Issuer | None = None
            for permutation in itertools.permutations(related_by_hash[related_hash]):
                issuer_copy = issuer.copy()
                path = ""
                recursion: list[str] = []
                skip = False
                for related in permutation:
                    if related in self.canonical.issued:
                        path += self.canonical.issued[related]
                    else:
                        if related not in issuer_copy.issued:
                            recursion.append(related)
                        path += issuer_copy.issue(related)
                    if chosen_path and len(path) >= len(chosen_path) and path > chosen_path:
                        skip = True
                        break
                if skip:
                    continue
                for related in recursion:
                    result_hash, result_issuer = self.hash_n_degree(related, issuer_copy)
                    path += issuer_copy.issue(related)
                    path += f"<{result_hash}>"
                    issuer_copy = result_issuer
                    if chosen_path and len(path) >= len(chosen_path) and path > chosen_path:
                        skip = True
                        break
                if skip:
                    continue
                if not chosen_path or path < chosen_path:
                    chosen_path = path
                    chosen_issuer = issuer_copy
            data += chosen_path
            assert chosen_issuer is not None  # at least one permutation is never skipped
            issuer = chosen_issuer
        return self.hash(data), issuer


def canonical_labels(
    quads: Iterable[Quad], *, algorithm: str = "sha256", max_work: int = DEFAULT_MAX_WORK
) -> dict[str, str]:
    """Input blank node (``_:x``) -> canonical identifier (``_:c14nN``), specification 4.4."""
    if algorithm not in ("sha256", "sha384"):
        raise RdfcError(f"unsupported hash algorithm {algorithm}")
    digest = getattr(hashlib, algorithm)
    state = _State(list(quads), digest, max_work)
    by_hash: dict[str, list[str]] = {}
    for node in state.quads_of:
        by_hash.setdefault(state.hash_first_degree(node), []).append(node)
    shared: list[list[str]] = []
    for first in sorted(by_hash):
        nodes = by_hash[first]
        if len(nodes) == 1:
            state.canonical.issue(nodes[0])
        else:
            shared.append(nodes)
    for nodes in shared:
        results: list[tuple[str, _Issuer]] = []
        for node in nodes:
            if node in state.canonical.issued:
                continue
            temporary = _Issuer("_:b")
            temporary.issue(node)
            results.append(state.hash_n_degree(node, temporary))
        for _hash, issuer in sorted(results, key=lambda r: r[0]):
            for existing in issuer.issued:
                state.canonical.issue(existing)
    return dict(state.canonical.issued)


def canonicalize(
    quads: Iterable[Quad], *, algorithm: str = "sha256", max_work: int = DEFAULT_MAX_WORK
) -> str:
    """The canonical N-Quads document of the dataset ``quads`` (duplicates counted once)."""
    unique = list(dict.fromkeys(quads))
    labels = canonical_labels(unique, algorithm=algorithm, max_work=max_work)
    lines = {serialize(tuple(labels.get(t, t) for t in quad)) for quad in unique}  # type: ignore[arg-type]
    return "".join(sorted(lines))
