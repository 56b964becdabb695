"""W3C Bitstring Status List v1.0: the revocation list of an issuer's credentials.

A credential carries a ``credentialStatus`` entry (``BitstringStatusListEntry``) naming a
status list credential (a ``BitstringStatusListCredential``, served publicly and signed by the
same issuer) and its index in that list. The list's ``encodedList`` is the bitstring, GZIP-
compressed, in multibase base64url without padding (``u...``); bit 0 is the most significant
bit of the first byte; a set bit with ``statusPurpose`` "revocation" means revoked. Lists are
at least 16 KiB (131,072 entries), as the specification asks, so that one credential's index
says little about who holds it; indexes are drawn at random.
"""

from __future__ import annotations

import base64
import gzip
import io
from collections.abc import Callable, Iterable
from typing import Any

from learnloop.interop import vc

#: entries in a list (16 KiB of bits, the specification's minimum)
SIZE = 131_072
PURPOSE = "revocation"
#: the largest bitstring a verifier inflates (a list is untrusted input)
MAX_BYTES = 2_000_000


class StatusError(vc.VcError):
    """A status entry or status list that cannot be checked."""


def encode(indexes: Iterable[int], size: int = SIZE) -> str:
    """The ``encodedList`` with the bits at ``indexes`` set."""
    bits = bytearray(size // 8)
    for index in indexes:
        if not 0 <= index < size:
            raise ValueError(f"status index {index} is outside the list")
        bits[index // 8] |= 0x80 >> (index % 8)
    packed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode(encoded: str) -> bytes:
    """The bitstring of an ``encodedList`` (bounded: a list is untrusted input)."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise StatusError("the encodedList is not multibase base64url (u...)")
    data = encoded[1:]
    try:
        packed = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as fh:
            bits = fh.read(MAX_BYTES + 1)
    except (ValueError, OSError, EOFError) as exc:
        raise StatusError(f"the encodedList cannot be decoded ({type(exc).__name__})") from None
    if len(bits) > MAX_BYTES:
        raise StatusError("the status list is too large")
    return bits


def bit(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise StatusError(f"status index {index} is outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def entry(list_url: str, index: int) -> dict[str, Any]:
    """A credential's ``credentialStatus`` for ``index`` in the list at ``list_url``."""
    return {
        "id": f"{list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": PURPOSE,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def list_credential(
    list_url: str, issuer: str, revoked: Iterable[int], valid_from: str, valid_until: str
) -> dict[str, Any]:
    """The (unsigned) ``BitstringStatusListCredential`` with ``revoked`` set."""
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": valid_from,
        "validUntil": valid_until,
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": PURPOSE,
            "encodedList": encode(revoked),
        },
    }


def _issuer_id(document: dict[str, Any]) -> str:
    issuer = document.get("issuer")
    return str(issuer.get("id") if isinstance(issuer, dict) else issuer)


def is_revoked(credential: dict[str, Any], fetch: Callable[[str], dict[str, Any]]) -> bool | None:
    """Whether ``credential`` is revoked per its status list (None: it has no
    ``credentialStatus``). ``fetch`` returns the status list credential at a URL. The list's own
    proof must verify and its issuer must be the credential's; ``StatusError`` otherwise."""
    status = credential.get("credentialStatus")
    if status is None:
        return None
    entries = status if isinstance(status, list) else [status]
    revoked = False
    for item in entries:
        if not isinstance(item, dict) or item.get("type") != "BitstringStatusListEntry":
            raise StatusError("the credentialStatus is not a BitstringStatusListEntry")
        url = item.get("statusListCredential")
        try:
            index = int(str(item.get("statusListIndex")))
        except ValueError:
            raise StatusError("the statusListIndex is not a number") from None
        if not isinstance(url, str) or not url:
            raise StatusError("the credentialStatus names no status list")
        listed = fetch(url)
        try:
            vc.verify(listed)
        except vc.VcError as exc:
            raise StatusError(f"the status list's proof does not verify: {exc}") from None
        if _issuer_id(listed) != _issuer_id(credential):
            raise StatusError("the status list is not the credential issuer's")
        if "BitstringStatusListCredential" not in (listed.get("type") or []):
            raise StatusError("the status list is not a BitstringStatusListCredential")
        subject = listed.get("credentialSubject") or {}
        if subject.get("statusPurpose") != item.get("statusPurpose"):
            raise StatusError("the status list's purpose is not the entry's")
        if item.get("statusPurpose") == PURPOSE and bit(decode(subject.get("encodedList", "")), index):
            revoked = True
    return revoked
