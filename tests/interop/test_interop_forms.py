"""The forms of the standards pages (routes_interop.py), read through one model each: the exchange
upload's unreadable or empty file is a 422 with its message, an over-long field a 422; on the LRS
page an unticked box turns sending off and an empty password keeps the stored one."""

from __future__ import annotations

from typing import Any

from learnloop.services import xapi_outbox
from learnloop.services.context import AppContext
from tests.interop.test_badges import _admin, _web_login


def test_exchange_upload_form_errors(ctx: AppContext, client: Any) -> None:
    _admin(ctx, "admin@example.org")
    token = _web_login(client, "admin@example.org")

    def post(**fields: str) -> Any:
        data = {"csrf_token": token, "format": "qti", "action": "check", **fields}
        return client.post("/admin/exchange/upload", data=data, follow_redirects=False)

    bad = post(data_b64="not base64!", filename="x.zip")
    assert bad.status_code == 422 and "could not be read" in bad.text
    empty = post()
    assert empty.status_code == 422 and "Choose a file" in empty.text
    assert post(data_b64="QUJD", filename="x" * 201).status_code == 422  # over max_length
    client.get("/lang/zh_CN")
    zh = post()
    assert zh.status_code == 422 and "Choose a file" not in zh.text


def test_lrs_form_unticked_box_and_empty_password(ctx: AppContext, client: Any) -> None:
    admin = _admin(ctx, "admin@example.org")
    token = _web_login(client, "admin@example.org")
    form = {
        "csrf_token": token,
        "endpoint": "http://127.0.0.1:9/xAPI/",
        "username": "lrs",
        "home_page": "https://learn.example.org",
        "actor_mode": "mbox",
    }
    data = {**form, "enabled": "1", "password": "pw-1"}
    assert client.post("/admin/standards/xapi", data=data, follow_redirects=False).status_code == 303
    view = xapi_outbox.settings_view(ctx, admin.user)
    assert view.enabled and view.password_set and view.actor_mode == "mbox"
    again = client.post("/admin/standards/xapi", data={**form, "password": ""}, follow_redirects=False)
    assert again.status_code == 303
    view = xapi_outbox.settings_view(ctx, admin.user)
    assert not view.enabled and view.password_set  # the box unticked: off; the password kept
    long = client.post("/admin/standards/xapi", data={**form, "endpoint": "http://x/" + "a" * 500})
    assert long.status_code == 422
