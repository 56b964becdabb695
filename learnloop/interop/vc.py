"""W3C Verifiable Credentials 2.0 with Data Integrity proofs, cryptosuite eddsa-rdfc-2022.

Sign and verify (W3C "Data Integrity EdDSA Cryptosuites v1.0", section 3.3): the unsecured
document and the proof configuration are each turned into RDF (JSON-LD 1.1 "Deserialize JSON-LD
to RDF", by pyoxigraph's JSON-LD parser, MIT/Apache-2.0), canonicalised with RDF Dataset
Canonicalization (RDFC-1.0, ``interop/rdfc.py``, checked against the W3C test suite), hashed with
SHA-256, and the concatenation ``sha256(proof config) || sha256(document)`` is signed with
Ed25519; ``proofValue`` is the signature in multibase base58btc (``z...``).

JSON-LD contexts are never fetched: every context reference in a document is replaced by the
shipped file registered in ``CONTEXTS`` (``interop/contexts/``), each pinned by its SHA-256,
before the document is parsed, so a changed file or an unknown context is an error, and
verification needs no network. As JSON-LD's toRdf does by default (``rdfDirection`` unset),
``@direction`` is not part of the RDF; relative IRIs (no base IRI) are left out of it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import base58
import pyoxigraph
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from learnloop.interop import rdfc

CONTEXT_DIR = Path(__file__).with_name("contexts")
#: URL -> (file, sha256 of the file): the only contexts a document may use
CONTEXTS: dict[str, tuple[Path, str]] = {
    "https://www.w3.org/ns/credentials/v2": (
        CONTEXT_DIR / "credentials-v2.jsonld",
        "59955ced6697d61e03f2b2556febe5308ab16842846f5b586d7f1f7adec92734",
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": (
        CONTEXT_DIR / "ob-v3p0-context-3.0.3.json",
        "ef2fa9c7846dce233cc166b43639027278be4ee44f00bb1d45c75de2dd0cd761",
    ),
}
ED25519_PUB = b"\xed\x01"  # multicodec ed25519-pub
ED25519_PRIV = b"\x80\x26"  # multicodec ed25519-priv
CRYPTOSUITE = "eddsa-rdfc-2022"
#: pyoxigraph reads native JSON integers beyond 64 bits as doubles; JSON-LD keeps them integers
#: below 10^21, so such a document would not canonicalise as other processors do: refused
_MAX_INT = 2**64
_MAX_CONTEXT_DEPTH = 8


class VcError(ValueError):
    """A credential or proof that cannot be processed or does not verify."""


def document_loader(extra: dict[str, tuple[Path, str]] | None = None) -> Callable[..., dict[str, Any]]:
    """A context loader serving only pinned local files (``extra`` adds some, e.g. tests):
    ``load(url)`` returns ``{"documentUrl": url, "document": <the parsed file>}``."""
    table = {**CONTEXTS, **(extra or {})}
    cache: dict[str, Any] = {}

    def load(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        if url not in table:
            raise VcError(f"unknown JSON-LD context {url[:200]} (contexts are never fetched)")
        if url not in cache:
            path, digest = table[url]
            raw = path.read_bytes()
            if hashlib.sha256(raw).hexdigest() != digest:
                raise VcError(f"the shipped copy of {url} does not match its pinned hash")
            cache[url] = json.loads(raw)
        return {"contextUrl": None, "documentUrl": url, "document": cache[url]}

    return load


def _remote_context(url: str, loader: Callable[..., dict[str, Any]], depth: int) -> Any:
    document = loader(url)["document"]
    if not isinstance(document, dict) or "@context" not in document:
        raise VcError(f"the context {url[:200]} has no @context")
    return _inline_context(document["@context"], loader, depth + 1)


def _inline_context(value: Any, loader: Callable[..., dict[str, Any]], depth: int) -> Any:
    """A context value with every remote reference (and ``@import``) replaced by its content."""
    if depth > _MAX_CONTEXT_DEPTH:
        raise VcError("JSON-LD contexts nested too deep")
    if isinstance(value, str):
        return _remote_context(value, loader, depth)
    if isinstance(value, list):
        return [_inline_context(v, loader, depth) for v in value]
    if isinstance(value, dict):
        local = {k: _inline(v, loader, depth) for k, v in value.items() if k != "@import"}
        if "@import" not in value:
            return local
        imported = (
            _remote_context(value["@import"], loader, depth) if isinstance(value["@import"], str) else None
        )
        if not isinstance(imported, dict) or "@import" in imported:
            raise VcError("@import must name one context object")
        return {**imported, **local}  # the importing context's definitions win (JSON-LD 1.1 4.1.10)
    return value


def _inline(node: Any, loader: Callable[..., dict[str, Any]], depth: int = 0) -> Any:
    """``node`` with every ``@context`` inlined, checking its numbers on the way. An ``@json``
    value is walked too (which properties are ``@json`` is known only to the parser): one that
    holds an ``@context`` key fails closed, as an unknown context or a changed literal."""
    if isinstance(node, list):
        return [_inline(n, loader, depth) for n in node]
    if isinstance(node, dict):
        return {
            k: _inline_context(v, loader, depth) if k == "@context" else _inline(v, loader, depth)
            for k, v in node.items()
        }
    if isinstance(node, int) and not isinstance(node, bool) and abs(node) >= _MAX_INT:
        raise VcError("integers of 2^64 and more are not supported in credentials")
    if isinstance(node, float) and node != node:
        raise VcError("the document is not valid JSON (NaN)")
    return node


def _term(term: Any) -> str:
    if isinstance(term, pyoxigraph.NamedNode):
        return rdfc.iri(term.value)
    if isinstance(term, pyoxigraph.BlankNode):
        return rdfc.blank(term.value)
    if isinstance(term, pyoxigraph.Literal):
        # the base direction is not RDF in JSON-LD's default toRdf (rdfDirection unset)
        return rdfc.literal(term.value, term.datatype.value, term.language)
    raise VcError(f"unexpected RDF term {type(term).__name__} in the document")


def to_quads(document: dict[str, Any], loader: Callable[..., dict[str, Any]]) -> list[rdfc.Quad]:
    """The RDF dataset of a JSON-LD ``document`` (contexts from ``loader`` only)."""
    try:
        text = json.dumps(_inline(document, loader), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, VcError):
            raise
        raise VcError(f"the document is not JSON ({str(exc)[:200]})") from None
    try:
        quads = []
        for quad in pyoxigraph.parse(text, pyoxigraph.RdfFormat.JSON_LD):
            graph = "" if isinstance(quad.graph_name, pyoxigraph.DefaultGraph) else _term(quad.graph_name)
            quads.append((_term(quad.subject), _term(quad.predicate), _term(quad.object), graph))
    except (SyntaxError, ValueError) as exc:
        if isinstance(exc, VcError):
            raise
        raise VcError(f"the document is not valid JSON-LD ({type(exc).__name__}: {str(exc)[:200]})") from None
    return quads


def canonize(document: dict[str, Any], loader: Callable[..., dict[str, Any]]) -> str:
    """The canonical N-Quads (RDFC-1.0, SHA-256) of the JSON-LD ``document``."""
    try:
        return rdfc.canonicalize(to_quads(document, loader))
    except rdfc.RdfcError as exc:
        raise VcError(f"the document cannot be canonicalised: {exc}") from None


def _hash_data(
    document: dict[str, Any], proof_config: dict[str, Any], loader: Callable[..., dict[str, Any]]
) -> bytes:
    return (
        hashlib.sha256(canonize(proof_config, loader).encode()).digest()
        + hashlib.sha256(canonize(document, loader).encode()).digest()
    )


def private_key_from_multibase(value: str) -> Ed25519PrivateKey:
    raw = _multibase(value)
    if raw[:2] != ED25519_PRIV or len(raw) != 34:
        raise VcError("not an Ed25519 private key in multibase")
    return Ed25519PrivateKey.from_private_bytes(raw[2:])


def public_key_from_multibase(value: str) -> Ed25519PublicKey:
    raw = _multibase(value)
    if raw[:2] != ED25519_PUB or len(raw) != 34:
        raise VcError("not an Ed25519 public key in multibase")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def public_multibase(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "z" + base58.b58encode(ED25519_PUB + raw).decode()


def private_multibase(key: Ed25519PrivateKey) -> str:
    """``key``'s private half in multibase (a secret: store it, never log or show it)."""
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return "z" + base58.b58encode(ED25519_PRIV + raw).decode()


def did_key(key: Ed25519PrivateKey) -> str:
    """The did:key verification method of ``key`` (``did:key:z6Mk...#z6Mk...``)."""
    mb = public_multibase(key)
    return f"did:key:{mb}#{mb}"


def _multibase(value: str) -> bytes:
    if not value.startswith("z"):
        raise VcError("only base58btc multibase values (z...) are supported")
    try:
        return base58.b58decode(value[1:])
    except ValueError:
        raise VcError("the multibase value is not base58btc") from None


def sign(
    document: dict[str, Any],
    key: Ed25519PrivateKey,
    *,
    verification_method: str,
    created: str,
    loader: Callable[..., dict[str, Any]] | None = None,
    purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """``document`` with a DataIntegrityProof (eddsa-rdfc-2022) added."""
    loader = loader or document_loader()
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": purpose,
    }
    config = {**proof, "@context": unsecured["@context"]}
    signature = key.sign(_hash_data(unsecured, config, loader))
    return {
        **copy.deepcopy(unsecured),
        "proof": {**proof, "proofValue": "z" + base58.b58encode(signature).decode()},
    }


def resolve_did_key(verification_method: str) -> Ed25519PublicKey:
    """The public key of a ``did:key`` verification method (resolved offline)."""
    did, _sep, fragment = verification_method.partition("#")
    if not did.startswith("did:key:z6Mk"):
        raise VcError("only did:key Ed25519 verification methods are resolved")
    mb = did.removeprefix("did:key:")
    if fragment and fragment != mb:
        raise VcError("the verification method's fragment is not its key")
    return public_key_from_multibase(mb)


def verify(
    credential: dict[str, Any],
    *,
    loader: Callable[..., dict[str, Any]] | None = None,
    resolve: Callable[[str], Ed25519PublicKey] = resolve_did_key,
) -> None:
    """Raise ``VcError`` unless ``credential`` carries one valid eddsa-rdfc-2022 proof."""
    loader = loader or document_loader()
    proof = credential.get("proof")
    if not isinstance(proof, dict):
        raise VcError("the credential has no proof")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise VcError("the proof is not a DataIntegrityProof with eddsa-rdfc-2022")
    value = proof.get("proofValue")
    if not isinstance(value, str):
        raise VcError("the proof has no proofValue")
    signature = _multibase(value)
    if len(signature) != 64:
        raise VcError("the proofValue is not an Ed25519 signature")
    unsecured = {k: v for k, v in credential.items() if k != "proof"}
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in config and config["@context"] != unsecured.get("@context"):
        raise VcError("the proof's context is not the credential's")
    config["@context"] = unsecured.get("@context")
    key = resolve(str(proof.get("verificationMethod", "")))
    try:
        key.verify(signature, _hash_data(unsecured, config, loader))
    except InvalidSignature:
        raise VcError("the proof does not verify (the credential or its proof was changed)") from None
