"""Open Badges 3.0, continued: revocation as a W3C Bitstring Status List (the credential's
credentialStatus, a public list signed by the organisation, the bit flipped by revoking and read
by the verifier), skill credentials where the organisation enables them, the achievement's SVG
image, and a cross-check by an independent implementation (openbadgeslib, test-only)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from learnloop.interop import status_list, vc
from learnloop.services import badges
from learnloop.services.context import AppContext
from learnloop.store.models import Organisation
from learnloop.store.models_interop import BadgeCredential
from tests.interop.test_badges import _admin, _answer_until_issued, _learner, _relaxed


def _path(ctx: AppContext, url: str) -> str:
    base = ctx.settings.public_url.rstrip("/")
    assert url.startswith(base + "/")
    return url[len(base) :]


def _openbadgeslib(peers: Path, credential: dict[str, Any], lists: dict[str, Any]) -> dict[str, Any]:
    issuer = credential["issuer"]["id"]
    request = {
        "credential": credential,
        "lists": lists,
        "public_key_multibase": issuer.removeprefix("did:key:"),
    }
    done = subprocess.run(
        [str(peers), str(Path(__file__).with_name("obcheck.py"))],
        input=json.dumps(request), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_bitstring_status_list_encoding() -> None:
    encoded = status_list.encode([0, 9, status_list.SIZE - 1])
    bits = status_list.decode(encoded)
    assert encoded.startswith("u") and len(bits) == status_list.SIZE // 8
    assert bits[0] == 0x80 and bits[1] == 0x40 and bits[-1] == 0x01  # bit 0 is the first byte's high bit
    assert [i for i in (0, 1, 8, 9, status_list.SIZE - 1) if status_list.bit(bits, i)] == [
        0,
        9,
        status_list.SIZE - 1,
    ]
    with pytest.raises(status_list.StatusError):
        status_list.decode("zNotBase64url")
    with pytest.raises(ValueError):
        status_list.encode([status_list.SIZE])


def test_revocation_flips_the_bit_in_the_signed_public_list(
    ctx: AppContext, client: Any, peers: Path
) -> None:
    """Revocation through the W3C Bitstring Status List, checked by our verifier and by an
    independent implementation: openbadgeslib 4.6.3 (LGPL, test-only environment) verifies the
    eddsa-rdfc-2022 proof, the OB 3.0 structure and the status bit, and the list's own proof; a
    changed credential and a revoked one fail there too."""
    _relaxed(ctx)
    admin = _admin(ctx, "admin@example.org")
    learner = _learner(ctx).user
    credential_id = _answer_until_issued(ctx, learner)
    document = badges.download(ctx, learner, credential_id)
    status = document["credentialStatus"]
    assert status["type"] == "BitstringStatusListEntry" and status["statusPurpose"] == "revocation"
    index = int(status["statusListIndex"])
    with ctx.session() as session:
        org = session.get(Organisation, learner.org_id)
        assert org is not None
        slug = org.slug
        row = session.get(BadgeCredential, credential_id)
        assert row is not None and row.status_index == index
    assert status["statusListCredential"].endswith(f"/badges/status/{slug}")

    got = client.get(_path(ctx, status["statusListCredential"]))
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/vc+ld+json")
    listed = got.json()
    vc.verify(listed)  # signed by the organisation's key
    assert listed["issuer"] == document["issuer"]["id"]
    assert listed["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert not status_list.bit(status_list.decode(listed["credentialSubject"]["encodedList"]), index)
    answer = client.get(f"/credentials/{credential_id}").json()
    assert answer["verified"] and answer["status"] == "active" and answer["status_list_checked"]
    url = status["statusListCredential"]
    peer = _openbadgeslib(peers, document, {url: listed})
    assert peer["verified"] is True, peer["error"]
    assert peer["lists"][url] == {"verified": True, "error": None}
    changed = copy.deepcopy(document)
    changed["credentialSubject"]["achievement"]["name"] = "Expert"
    refused = _openbadgeslib(peers, changed, {url: listed})
    assert refused["verified"] is False and refused["error"]

    badges.revoke(ctx, admin.user, credential_id, "issued in error")
    listed = client.get(_path(ctx, status["statusListCredential"])).json()
    peer = _openbadgeslib(peers, document, {url: listed})
    assert peer["verified"] is False and "revocation" in peer["error"], peer
    assert peer["lists"][url]["verified"] is True
    bits = status_list.decode(listed["credentialSubject"]["encodedList"])
    assert status_list.bit(bits, index) and sum(bin(b).count("1") for b in bits) == 1
    assert status_list.is_revoked(document, lambda url: listed) is True
    answer = client.get(f"/credentials/{credential_id}").json()
    assert answer["verified"] and answer["status"] == "revoked" and answer["status_list_checked"]

    # a list whose bits were changed, or signed by someone else, is not believed
    cleared = copy.deepcopy(listed)
    cleared["credentialSubject"]["encodedList"] = status_list.encode([])
    with pytest.raises(status_list.StatusError, match="proof"):
        status_list.is_revoked(document, lambda url: cleared)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate()
    forged = vc.sign(
        {**{k: v for k, v in cleared.items() if k != "proof"}, "issuer": vc.did_key(other).split("#")[0]},
        other,
        verification_method=vc.did_key(other),
        created=cleared["validFrom"],
    )
    with pytest.raises(status_list.StatusError, match="issuer"):
        status_list.is_revoked(document, lambda url: forged)
    assert client.get("/badges/status/no-such-org").status_code == 404


def test_skill_credentials_where_enabled_with_their_images(ctx: AppContext, client: Any) -> None:
    _relaxed(ctx)
    admin = _admin(ctx, "admin@example.org")
    login = _learner(ctx)
    learner = login.user
    ha, hl = {"Authorization": f"Bearer {admin.token}"}, {"Authorization": f"Bearer {login.token}"}
    assert client.get("/api/v1/badges/settings", headers=ha).json() == {"skill_badges": False}
    assert client.put("/api/v1/badges/settings", json={"skill_badges": True}, headers=hl).status_code == 403
    saved = client.put("/api/v1/badges/settings", json={"skill_badges": True}, headers=ha)
    assert saved.status_code == 200 and badges.badge_settings(ctx, admin.user).skill_badges is True
    _answer_until_issued(ctx, learner)
    mine = badges.my_credentials(ctx, learner)
    with ctx.session() as session:
        role = ctx.active_pack(session).roles["builder"]
    keys = sorted(c.role_id for c in mine)
    assert keys == sorted(["builder", *(badges.SKILL_PREFIX + s for s in role.targets)])
    skill = next(c for c in mine if c.role_id.startswith(badges.SKILL_PREFIX))
    document = badges.download(ctx, learner, skill.id)
    vc.verify(document)
    achievement = document["credentialSubject"]["achievement"]
    assert achievement["id"].endswith(":skill:" + skill.role_id.removeprefix(badges.SKILL_PREFIX))
    assert "credentialStatus" in document
    image = client.get(_path(ctx, achievement["image"]["id"]))
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/svg+xml")
    assert image.text.startswith("<svg") and skill.role_name in image.text
    role_doc = badges.download(ctx, learner, next(c.id for c in mine if c.role_id == "builder"))
    role_image = client.get(_path(ctx, role_doc["credentialSubject"]["achievement"]["image"]["id"]))
    assert role_image.status_code == 200 and "Builder" in role_image.text
    assert client.get(_path(ctx, achievement["image"]["id"]).replace("/skill/", "/role/")).status_code == 404
    badges.set_skill_badges(ctx, admin.user, False)
    assert badges.badge_settings(ctx, admin.user).skill_badges is False
