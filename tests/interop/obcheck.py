"""Run in the test-only environment .venv-interop (scripts/_interop_peers.sh), never imported
by Learnloop: openbadgeslib (LGPL-3.0), an independent Open Badges 3.0 implementation, checks
a credential Learnloop issued.

Reads JSON on stdin: ``credential``, ``public_key_multibase`` (the issuer's Ed25519 key,
``z6Mk...``) and ``lists`` (status list credentials by URL; nothing is fetched). Prints JSON:
``verified`` and ``error`` for the credential (its eddsa-rdfc-2022 proof against the pinned key,
OB 3.0 structure, validity window and its Bitstring Status List bit), and ``list_verified`` /
``list_error`` for each status list's own Data Integrity proof."""

from __future__ import annotations

import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from openbadgeslib.ob3.ldp import OB3LdpVerifier, verify_data_integrity_proof

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + ALPHABET.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _pem(multibase: str) -> bytes:
    raw = _b58decode(multibase[1:])
    assert raw[:2] == b"\xed\x01" and len(raw) == 34, "not an Ed25519 multikey"
    key = Ed25519PublicKey.from_public_bytes(raw[2:])
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def main() -> int:
    request = json.load(sys.stdin)
    pem = _pem(request["public_key_multibase"])
    lists: dict[str, dict] = request.get("lists") or {}

    def download(url: str) -> bytes:
        if url not in lists:
            raise LookupError(f"no status list {url} was given")
        return json.dumps(lists[url]).encode()

    out: dict[str, object] = {"verified": False, "error": None, "lists": {}}
    try:
        OB3LdpVerifier(pubkey_pem=pem).verify(
            request["credential"], check_status=bool(lists), download=download, verify_status_list=False
        )
        out["verified"] = True
    except Exception as exc:  # report whatever the library refused, and why
        out["error"] = f"{type(exc).__name__}: {exc}"
    for url, document in lists.items():
        try:
            verify_data_integrity_proof(document, pem)
            out["lists"][url] = {"verified": True, "error": None}  # type: ignore[index]
        except Exception as exc:
            out["lists"][url] = {"verified": False, "error": f"{type(exc).__name__}: {exc}"}  # type: ignore[index]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
