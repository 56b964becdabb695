"""Jinja2 rendering with gettext and safe Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from learnloop import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown(text: str) -> Markup:
    # Raw HTML is disabled, so author and learner text cannot inject markup.
    return Markup(_markdown.render(text or ""))  # noqa: S704


def local_path(url: str | None, default: str = "/", host: str | None = None) -> str:
    """``url`` as a path on this site, else ``default``: every redirect stays on the site.

    A path must start with one slash (``//host`` and backslashes are other sites to a
    browser); a full URL counts only when its host is ``host``, the request's own."""
    if not url or any(ord(c) < 32 or c == "\\" for c in url):
        return default
    parts = urlsplit(url)
    foreign = host is None or parts.scheme not in ("http", "https") or parts.netloc != host
    if (parts.scheme or parts.netloc) and foreign:
        return default
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return default
    return parts.path + (f"?{parts.query}" if parts.query else "")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{round(100 * value)}%"


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)
env.install_gettext_callables(i18n.gettext_, i18n.ngettext_, newstyle=True)  # type: ignore[attr-defined]
env.filters["markdown"] = markdown
env.filters["percent"] = percent


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    context["locale"] = i18n.get_locale()
    context["locales"] = i18n.LOCALES
    context["path"] = request.url.path
    html = env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code)
