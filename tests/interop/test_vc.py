"""eddsa-rdfc-2022 Data Integrity proofs: the W3C vc-di-eddsa test vector reproduced byte for
byte, verification, and refusal of altered credentials, proofs and contexts (offline only)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from learnloop.interop import vc

VECTORS = Path(__file__).with_name("vectors")
EXAMPLES_URL = "https://www.w3.org/ns/credentials/examples/v2"
EXAMPLES = VECTORS / "credentials-examples-v2.jsonld"
EXAMPLES_SHA = "57393fbc69d6efb9b9b5dc9cb6b9880b0944360abfe2eaf459c9e58cf2279d7c"


def _loader():  # type: ignore[no-untyped-def]
    return vc.document_loader({EXAMPLES_URL: (EXAMPLES, EXAMPLES_SHA)})


def _json(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def test_w3c_vector_is_reproduced_byte_for_byte() -> None:
    unsigned, pair = _json("unsigned.json"), _json("keyPair.json")
    config = _json("eddsa-rdfc-2022-proofConfigDataInt.json")
    expected = _json("eddsa-rdfc-2022-signedDataInt.json")
    key = vc.private_key_from_multibase(pair["privateKeyMultibase"])
    assert vc.public_multibase(key) == pair["publicKeyMultibase"]
    loader = _loader()
    assert vc.canonize(unsigned, loader) == (VECTORS / "eddsa-rdfc-2022-canonDocDataInt.txt").read_text()
    proof_config = {k: v for k, v in config.items()}
    assert (
        vc.canonize(proof_config, loader) == (VECTORS / "eddsa-rdfc-2022-proofCanonDataInt.txt").read_text()
    )
    signed = vc.sign(
        unsigned,
        key,
        verification_method=config["verificationMethod"],
        created=config["created"],
        loader=loader,
    )
    assert signed["proof"]["proofValue"] == expected["proof"]["proofValue"]
    assert (
        signed["proof"]["proofValue"] == (VECTORS / "eddsa-rdfc-2022-sigBTC58DataInt.txt").read_text().strip()
    )
    assert signed == expected
    vc.verify(expected, loader=loader)


def test_altered_credentials_proofs_and_contexts_fail(tmp_path: Path) -> None:
    loader = _loader()
    signed = _json("eddsa-rdfc-2022-signedDataInt.json")
    changed = copy.deepcopy(signed)
    changed["credentialSubject"]["alumniOf"] = "Another School"
    with pytest.raises(vc.VcError, match="does not verify"):
        vc.verify(changed, loader=loader)
    forged = copy.deepcopy(signed)
    value = forged["proof"]["proofValue"]
    forged["proof"]["proofValue"] = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    with pytest.raises(vc.VcError):
        vc.verify(forged, loader=loader)
    other_key = copy.deepcopy(signed)
    other = Ed25519PrivateKey.generate()
    other_key["proof"]["verificationMethod"] = vc.did_key(other)
    with pytest.raises(vc.VcError, match="does not verify"):
        vc.verify(other_key, loader=loader)
    unknown = copy.deepcopy(signed)
    unknown["@context"] = [*signed["@context"], "https://evil.example/context.jsonld"]
    with pytest.raises(vc.VcError, match="unknown JSON-LD context"):
        vc.verify(unknown, loader=loader)
    # a shipped context that was changed no longer matches its pin
    altered = tmp_path / "examples.jsonld"
    altered.write_text(EXAMPLES.read_text().replace("examples#", "elsewhere#"))
    tampered_loader = vc.document_loader({EXAMPLES_URL: (altered, EXAMPLES_SHA)})
    with pytest.raises(vc.VcError, match="pinned hash"):
        vc.verify(signed, loader=tampered_loader)
    # and an honest different context gives a different proof: the context is signed too
    honest = vc.document_loader({EXAMPLES_URL: (altered, hashlib.sha256(altered.read_bytes()).hexdigest())})
    with pytest.raises(vc.VcError, match="does not verify"):
        vc.verify(signed, loader=honest)
    without = {k: v for k, v in signed.items() if k != "proof"}
    with pytest.raises(vc.VcError, match="no proof"):
        vc.verify(without, loader=loader)


def test_own_keys_sign_and_verify_with_did_key() -> None:
    key = Ed25519PrivateKey.generate()
    unsigned = _json("unsigned.json")
    signed = vc.sign(
        unsigned, key, verification_method=vc.did_key(key), created="2026-12-06T00:00:00Z", loader=_loader()
    )
    vc.verify(signed, loader=_loader())
    assert vc.resolve_did_key(vc.did_key(key)).public_bytes_raw() == key.public_key().public_bytes_raw()


PYLD_ERA = VECTORS / "pyld-era"


@pytest.mark.parametrize("name", ["ob-credential", "ob-credential-rich", "status-list"])
def test_credentials_signed_before_pyld_was_replaced_still_verify(name: str) -> None:
    """Signed by the PyLD-based vc.py (see vectors/pyld-era/README.md): the same canonical
    N-Quads, byte for byte, so the same signatures verify; a changed value still fails."""
    signed = json.loads((PYLD_ERA / f"{name}.json").read_text(encoding="utf-8"))
    unsecured = {k: v for k, v in signed.items() if k != "proof"}
    assert vc.canonize(unsecured, _loader()) == (PYLD_ERA / f"{name}.nq").read_text(encoding="utf-8")
    vc.verify(signed, loader=_loader())
    changed = copy.deepcopy(signed)
    changed["validFrom"] = "2026-12-08T00:00:00Z"
    with pytest.raises(vc.VcError, match="does not verify"):
        vc.verify(changed, loader=_loader())


V2 = "https://www.w3.org/ns/credentials/v2"


def _quads(document: dict) -> str:
    return vc.canonize(document, _loader())


def test_jsonld_11_features_of_the_contexts() -> None:
    # a protected term of the VC context cannot be redefined (JSON-LD 1.1 @protected)
    evil = {
        "@context": [V2, {"name": "https://evil.example/name"}],
        "type": "VerifiableCredential",
        "name": "x",
    }
    with pytest.raises(vc.VcError, match="not valid JSON-LD"):
        _quads(evil)
    # @type: @json is the JSON Canonicalization Scheme form; numbers as JSON-LD writes them
    ctx = {"j": {"@id": "https://ex.example/j", "@type": "@json"}, "n": "https://ex.example/n"}
    doc = {"@context": [V2, ctx], "id": "urn:a", "j": {"b": 1, "a": [1.0, None]}, "n": [2, 2.5, 1.0]}
    out = _quads(doc)
    assert (
        '<urn:a> <https://ex.example/j> "{\\"a\\":[1,null],\\"b\\":1}"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .\n'
        in out
    )
    assert '"2.5E0"^^<http://www.w3.org/2001/XMLSchema#double>' in out
    assert out.count('"2"^^<http://www.w3.org/2001/XMLSchema#integer>') == 1
    assert out.count('"1"^^<http://www.w3.org/2001/XMLSchema#integer>') == 1
    # @direction is not RDF under JSON-LD's default toRdf; the language tag stays
    rtl = {"@context": [V2, ctx], "id": "urn:a", "n": {"@value": "x", "@language": "ar", "@direction": "rtl"}}
    assert _quads(rtl) == '<urn:a> <https://ex.example/n> "x"@ar .\n'
    # a nested unknown context is refused too, never fetched
    nested = {
        "@context": [V2, ctx],
        "id": "urn:a",
        "n": {"@context": "https://evil.example/c", "id": "urn:b"},
    }
    with pytest.raises(vc.VcError, match="unknown JSON-LD context"):
        _quads(nested)
    with pytest.raises(vc.VcError, match="2\\^64"):
        _quads({"@context": [V2, ctx], "id": "urn:a", "n": 2**70})


def test_import_and_type_scoped_contexts(tmp_path: Path) -> None:
    base = tmp_path / "base.jsonld"
    base.write_text(
        json.dumps({"@context": {"p": "https://ex.example/base#p", "q": "https://ex.example/base#q"}})
    )
    url = "https://ex.example/base"
    loader = vc.document_loader({url: (base, hashlib.sha256(base.read_bytes()).hexdigest())})
    doc = {
        "@context": {
            "@version": 1.1,
            "@import": url,
            "q": "https://ex.example/own#q",
            "T": {"@id": "https://ex.example/T", "@context": {"p": "https://ex.example/scoped#p"}},
        },
        "@id": "urn:a",
        "@type": "T",
        "p": "1",
        "q": "2",
        "child": {"@id": "urn:c", "p": "3"},
    }
    out = vc.canonize(doc, loader)
    assert '<urn:a> <https://ex.example/scoped#p> "1" .\n' in out  # type-scoped
    assert '<urn:a> <https://ex.example/own#q> "2" .\n' in out  # the importing context wins
    assert "urn:c" not in out  # "child" is no term: dropped, and with it urn:c
