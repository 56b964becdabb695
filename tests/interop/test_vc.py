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
