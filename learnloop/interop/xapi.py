"""xAPI 1.0.3 statements for Learnloop's learning events.

Pure translation: plain values in, a statement (a JSON-ready dict) out. Verbs come from the
ADL vocabulary (``http://adlnet.gov/expapi/verbs/``); activity types from the ADL activity
types. The actor is identified by an account on the organisation's home page (the learner's
opaque id, never their e-mail address) unless the organisation chose ``mbox``.

Statement ids are stable where the event is: the same answer always gives the same statement
id (``statement_id``, a UUID 5 in the organisation's own random namespace, so two installations
or organisations never share ids), and an outbox that delivers the same row twice still gives
the LRS one statement.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

XAPI_VERSION = "1.0.3"

ADL = "http://adlnet.gov/expapi/verbs/"
VERBS: dict[str, str] = {
    "answered": ADL + "answered",
    "interacted": ADL + "interacted",  # a hint was asked for and shown
    "experienced": ADL + "experienced",  # a lesson was read
    "mastered": ADL + "mastered",  # a role's target on a skill was met
    "completed": ADL + "completed",  # a skill check was finished
}
ACTIVITY = "http://adlnet.gov/expapi/activities/"
ACTIVITY_TYPES = {
    "item": ACTIVITY + "cmi.interaction",
    "hint": ACTIVITY + "interaction",
    "lesson": ACTIVITY + "lesson",
    "skill": ACTIVITY + "objective",
    "role": ACTIVITY + "course",
    "check": ACTIVITY + "assessment",
}
#: item kind -> xAPI interactionType
INTERACTION = {"choice": "choice", "numeric": "numeric", "text": "long-fill-in", "code": "other"}
ACTOR_MODES = ("account", "mbox")


class XapiError(ValueError):
    """A value that cannot go into a statement (an endpoint or home page that is no URL...)."""


@dataclass(frozen=True)
class Actor:
    """Who did it: ``user_key`` is the learner's opaque, stable id within the organisation."""

    user_key: str
    name: str
    email: str


@dataclass(frozen=True)
class Site:
    """Where activities and accounts live: the organisation's home page (an absolute http(s)
    URL), how actors are named (``account`` or ``mbox``), and the organisation's namespace of
    statement ids and actor keys (a random UUID chosen once)."""

    home_page: str
    namespace: str
    actor_mode: str = "account"
    language: str = "en"

    def __post_init__(self) -> None:
        check_url(self.home_page, "home page")
        if self.actor_mode not in ACTOR_MODES:
            raise XapiError(f"actor mode must be one of {', '.join(ACTOR_MODES)}")
        try:
            uuid.UUID(self.namespace)
        except ValueError:
            raise XapiError("the namespace must be a UUID") from None

    def statement_id(self, *key: object) -> str:
        """The statement id of one event: the same event always gets the same id."""
        return str(uuid.uuid5(uuid.UUID(self.namespace), ":".join(str(k) for k in key)))

    def user_key(self, user_id: int) -> str:
        """A learner's opaque, stable name in xAPI accounts (not their e-mail, not a row id)."""
        return self.statement_id("actor", user_id)

    def activity(self, kind: str, *parts: str) -> str:
        path = "/".join(quote(p, safe="") for p in parts)
        return f"{self.home_page.rstrip('/')}/xapi/activities/{kind}/{path}"


def check_url(url: str, what: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host, else ``XapiError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise XapiError(f"the {what} must be an absolute http(s) URL")
    return url


def actor(site: Site, who: Actor) -> dict[str, Any]:
    if site.actor_mode == "mbox":
        return {"objectType": "Agent", "name": who.name, "mbox": f"mailto:{who.email}"}
    return {"objectType": "Agent", "account": {"homePage": site.home_page, "name": who.user_key}}


def _verb(name: str) -> dict[str, Any]:
    return {"id": VERBS[name], "display": {"en-US": name}}


def _lang(site: Site) -> str:
    return "zh-CN" if site.language.lower().replace("_", "-").startswith("zh") else "en-US"


def _activity(site: Site, kind: str, ident: str, name: str, **definition: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": ACTIVITY_TYPES[kind], "name": {_lang(site): name or ident}}
    body.update(definition)
    return {"objectType": "Activity", "id": site.activity(kind, ident), "definition": body}


def _timestamp(at: datetime) -> str:
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _duration(ms: int | None) -> str | None:
    if ms is None or ms < 0:
        return None
    return f"PT{ms / 1000:.2f}S"


def _statement(
    sid: str,
    site: Site,
    who: Actor,
    verb: str,
    obj: dict[str, Any],
    at: datetime,
    *,
    result: dict[str, Any] | None = None,
    parents: list[dict[str, Any]] | None = None,
    grouping: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"platform": "Learnloop", "language": _lang(site)}
    activities: dict[str, Any] = {}
    if parents:
        activities["parent"] = parents
    if grouping:
        activities["grouping"] = grouping
    if activities:
        context["contextActivities"] = activities
    out: dict[str, Any] = {
        "id": sid,
        "actor": actor(site, who),
        "verb": _verb(verb),
        "object": obj,
        "context": context,
        "timestamp": _timestamp(at),
        "version": XAPI_VERSION,
    }
    if result is not None:
        out["result"] = result
    return out


def answered(
    sid: str,
    site: Site,
    who: Actor,
    *,
    item_id: str,
    item_kind: str,
    stem: str,
    skills: list[tuple[str, str]],
    correct: bool,
    score: float,
    hints_used: int,
    duration_ms: int | None,
    at: datetime,
    check_id: int | None = None,
) -> dict[str, Any]:
    """An answer to an item (practice, or a skill check when ``check_id`` is set). The
    response itself is not sent: the statement says whether it was right and its score."""
    result: dict[str, Any] = {
        "success": bool(correct),
        "score": {"scaled": round(min(max(float(score), 0.0), 1.0), 4)},
        "extensions": {site.activity("extension", "hints-used"): int(hints_used)},
    }
    if (duration := _duration(duration_ms)) is not None:
        result["duration"] = duration
    grouping = [_activity(site, "check", str(check_id), f"Skill check {check_id}")] if check_id else None
    return _statement(
        sid,
        site,
        who,
        "answered",
        _activity(site, "item", item_id, stem[:200], interactionType=INTERACTION.get(item_kind, "other")),
        at,
        result=result,
        parents=[_activity(site, "skill", s, n) for s, n in skills],
        grouping=grouping,
    )


def hint_used(
    sid: str, site: Site, who: Actor, *, item_id: str, level: int, skills: list[tuple[str, str]], at: datetime
) -> dict[str, Any]:
    """The learner asked for hint ``level`` (1 = the first) of an item."""
    return _statement(
        sid,
        site,
        who,
        "interacted",
        _activity(site, "hint", f"{item_id}/{level}", f"Hint {level} of {item_id}"),
        at,
        parents=[_activity(site, "item", item_id, item_id)]
        + [_activity(site, "skill", s, n) for s, n in skills],
    )


def lesson_read(
    sid: str,
    site: Site,
    who: Actor,
    *,
    lesson_id: str,
    title: str,
    skills: list[tuple[str, str]],
    at: datetime,
) -> dict[str, Any]:
    return _statement(
        sid,
        site,
        who,
        "experienced",
        _activity(site, "lesson", lesson_id, title),
        at,
        parents=[_activity(site, "skill", s, n) for s, n in skills],
    )


def target_met(
    sid: str,
    site: Site,
    who: Actor,
    *,
    skill_id: str,
    skill_name: str,
    role_id: str,
    role_name: str,
    mastery: float,
    at: datetime,
) -> dict[str, Any]:
    """The learner met their role's target on a skill (mastery with enough evidence)."""
    return _statement(
        sid,
        site,
        who,
        "mastered",
        _activity(site, "skill", skill_id, skill_name),
        at,
        result={"success": True, "completion": True, "score": {"scaled": round(float(mastery), 4)}},
        parents=[_activity(site, "role", role_id, role_name)],
    )


def check_completed(
    sid: str,
    site: Site,
    who: Actor,
    *,
    check_id: int,
    role_id: str,
    role_name: str,
    score: float,
    items: int,
    at: datetime,
    scale_max: float = 300.0,
) -> dict[str, Any]:
    """A finished skill check: its score on the 0-``scale_max`` scale."""
    raw = min(max(float(score), 0.0), scale_max)
    return _statement(
        sid,
        site,
        who,
        "completed",
        _activity(site, "check", str(check_id), f"Skill check: {role_name}"),
        at,
        result={
            "completion": True,
            "score": {"raw": round(raw, 1), "min": 0, "max": scale_max, "scaled": round(raw / scale_max, 4)},
            "extensions": {site.activity("extension", "items"): int(items)},
        },
        parents=[_activity(site, "role", role_id, role_name)],
    )
