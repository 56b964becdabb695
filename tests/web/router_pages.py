"""The web pages to check in a browser, enumerated from the app's router rather than listed.

Every GET route of the web routers (``learnloop.server._web_routers``) is filled in from the
demo organisation (path parameters from its data) and fetched in process as each role in
turn; the first role that gets an HTML page (200, ``text/html``) visits it in the browser
tests. A route that gives no HTML page to anyone (a download, a redirect, a page that needs
an outside system) must be in ``NOT_PAGES`` with the reason; otherwise ``router_pages`` reports
it, so a new page cannot be left unchecked by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from learnloop.server import _web_routers, create_app
from learnloop.services import assessment, auth
from learnloop.services.context import AppContext
from learnloop.services.demo import DEMO_PASSWORD
from learnloop.services.people import invitations
from learnloop.store.models import Assessment, EmailOutbox, Organisation, PendingItem, User

LEARNER = "learner001@acme.example"
#: takes the skill check (a learner in a check is refused the tutor: LEARNER is not)
CHECKER = "learner002@acme.example"
#: who fetches each route, in this order (None: signed out); the first to get a page visits it
ROLES: list[str | None] = [
    LEARNER,
    "instructor@acme.example",
    "manager@acme.example",
    "admin@acme.example",
    None,
    CHECKER,
]

#: routes that render no HTML page for any role, and why they are not visited
NOT_PAGES = {
    "/lang/{locale}": "sets the language cookie and redirects back",
    "/settings/export": "a JSON download of the member's data",
    "/reports": "redirects to the role's report page",
    "/reports/team.csv": "a CSV download",
    "/reports/team.pdf": "a PDF download",
    "/reports/me.pdf": "a PDF download (the learner's own progress report)",
    "/reports/learners/{user_id}.pdf": "a PDF download (a shared learner's progress report)",
    "/reports/items.csv": "a CSV download",
    "/sso/{org_slug}/login": "redirects to the organisation's identity provider (none in the demo)",
    "/sso/callback": "the identity provider's return; needs its signed answer",
    "/lti/login": "an LTI platform's login initiation; redirects to the platform",
    "/lti/jwks/{org_slug}": "a JSON key set for LTI platforms",
    "/lti/deep-link/{state}": "opened only by an LTI platform's deep-linking launch (a signed id_token)",
    "/badges/status/{slug}": "a JSON status list for credential verifiers",
    "/badges/images/{slug}/{kind}/{ident}.svg": "an SVG image",
    "/credentials/{credential_id}": "a credential's verification (JSON); the demo issues none",
    "/credentials/{credential_id}/download": "a credential's download; the demo issues none",
    "/practice/graded/{presentation_id}": "exists while a model grades a text answer (no model server here)",
    "/tutor/{conversation_id}": "a tutor conversation; the tutor needs a model server, the demo has none",
    "/admin/exchange/download/{what}": "a download of the organisation's content in a standard format",
}
#: who is tried first for paths starting so (the others follow in ROLES order)
LIKELY = {
    "/check/": CHECKER,
    "/admin/exchange": "instructor@acme.example",
    "/admin": "admin@acme.example",
    "/items": "instructor@acme.example",
    "/reviews": "instructor@acme.example",
    "/authoring": "instructor@acme.example",
    "/reports/items": "instructor@acme.example",
    "/reports/team": "manager@acme.example",
}


@dataclass
class RouterPages:
    #: role (None: signed out) -> paths it visits
    pages: dict[str | None, list[str]] = field(default_factory=dict)
    #: route -> the path it was filled in as
    filled: dict[str, str] = field(default_factory=dict)
    #: routes neither visited nor in NOT_PAGES, with what each role got
    unexplained: list[str] = field(default_factory=list)


def web_get_routes() -> list[str]:
    """The GET routes of the web routers, in router order."""
    return [
        route.path
        for router in _web_routers()
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    ]


def _values(ctx: AppContext, logins: dict[str, auth.LoginResult]) -> dict[str, str]:
    """A value from the demo organisation for each path parameter a page can be opened with."""
    with ctx.session() as session:
        learner = session.scalars(select(User).where(User.email == LEARNER)).one()
        org = session.get(Organisation, learner.org_id)
        assert org is not None
        pending = session.get(PendingItem, learner.id)
        checker = session.scalars(select(User).where(User.email == CHECKER)).one()
        check = session.scalars(select(Assessment.id).where(Assessment.user_id == checker.id)).first()
    values = {
        "skill_id": "llm.tokens",
        "lesson_id": "lesson.llm.tokens",
        "item_id": "llm.tokens.what-is-a-token",
        "user_id": str(learner.id),
        "org_slug": org.slug,
    }
    if pending is not None:
        values["presentation_id"] = pending.presentation_id
    if check is None:
        assessment.start(ctx, logins[CHECKER].user, "llm-app-engineer")
        with ctx.session() as session:
            check = session.scalars(select(Assessment.id).where(Assessment.user_id == checker.id)).one()
    values["assessment_id"] = str(check)
    admin = logins["admin@acme.example"].user
    invitations.invite(ctx, admin, email="invited@acme.example", name="Invited Person")
    with ctx.session() as session:
        bodies = session.scalars(select(EmailOutbox.body).order_by(EmailOutbox.id.desc())).all()
    token = next((m.group(1) for b in bodies if (m := re.search(r"/invite/([A-Za-z0-9_\-]+)", b))), None)
    if token:
        values["token"] = token
    return values


def router_pages(ctx: AppContext) -> RouterPages:
    """Each web page of the router, filled in from the demo, with the role that visits it."""
    out = RouterPages()
    routes = [r for r in web_get_routes() if r not in NOT_PAGES]
    client = TestClient(create_app(ctx))  # no lifespan: no job worker, no model warm-up
    logins = {email: auth.login(ctx, email=email, password=DEMO_PASSWORD) for email in ROLES if email}
    # pages without parameters first: the learner's visit to /practice leaves an item pending
    routes.sort(key=lambda r: "{" in r)
    values: dict[str, str] | None = None
    for route in routes:
        if "{" in route and values is None:
            values = _values(ctx, logins)
        names = re.findall(r"{(\w+)}", route)
        missing = [n for n in names if n not in (values or {})]
        if missing:
            out.unexplained.append(f"{route}: no demo value for {', '.join(missing)}")
            continue
        path = route
        for name in names:
            path = path.replace("{" + name + "}", (values or {})[name])
        got = []
        likely = next((who for prefix, who in LIKELY.items() if path.startswith(prefix)), None)
        for email in sorted(ROLES, key=lambda who: likely is not None and who != likely):
            client.cookies.clear()
            if email:
                client.cookies.set("learnloop_session", logins[email].token)
            r = client.get(path, follow_redirects=False)
            if r.status_code == 200 and r.headers.get("content-type", "").startswith("text/html"):
                out.pages.setdefault(email, []).append(path)
                out.filled[route] = path
                break
            got.append(f"{email or 'signed out'}: {r.status_code} {r.headers.get('content-type', '')}")
        else:
            out.unexplained.append(f"{path}: no HTML page for anyone ({'; '.join(got)})")
    return out
