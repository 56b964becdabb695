"""Translations (gettext catalogues managed with Babel). English and Simplified Chinese.

Catalogues are the ``.po`` files under ``learnloop/locale``; they are compiled in memory
on first use, so there is no build step and no binary file in the repository.
"""

from __future__ import annotations

import gettext
import io
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LOCALES = {"en": "English", "zh_CN": "简体中文"}
DOMAIN = "messages"

_current: ContextVar[str] = ContextVar("learnloop_locale", default="en")


@lru_cache(maxsize=8)
def translations(locale: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == "en" or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def set_locale(locale: str) -> None:
    _current.set(locale if locale in LOCALES else "en")


def get_locale() -> str:
    return _current.get()


def negotiate(accept_language: str | None) -> str:
    """Pick a supported locale from an Accept-Language header."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def gettext_(message: str) -> str:
    return translations(get_locale()).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return translations(get_locale()).ngettext(singular, plural, n)


_ = gettext_
