"""Jinja2 rendering with gettext and safe Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
