"""What a new password must be: long enough, not common or leaked, not the account's own details.

The rules follow NIST SP 800-63B: no composition rules, a length of 8-200 characters, and a check
against a list of passwords known from breaches. The list and the guess estimate come from the
zxcvbn package (MIT): its 30,000 most common passwords of leaked corpora, and its estimate of the
guesses a password takes, given the account's e-mail address and name as words an attacker tries
first. A password needs at least ``password_min_score`` (zxcvbn's 0-4 scale; 2 means about 10^8
guesses) to be accepted.
"""

from __future__ import annotations

import re
from functools import cache

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from learnloop.i18n import _

MIN_LENGTH = 8
MAX_LENGTH = 200
#: zxcvbn refuses longer input; the first 72 characters decide the estimate
_ESTIMATE_CHARS = 72
SERVICE_WORDS = ("learnloop",)


@cache
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def _personal_words(email: str, name: str) -> list[str]:
    local, _sep, domain = email.strip().lower().partition("@")
    words = [email.strip().lower(), local, domain.split(".")[0], *SERVICE_WORDS]
    words += [w for w in re.split(r"[^\w]+", name.lower()) if len(w) >= 3]
    return [w for w in words if w]


def problems(password: str, *, email: str = "", name: str = "", min_score: int = 2) -> list[str]:
    """Why ``password`` cannot be a new password (empty when it can)."""
    if len(password) < MIN_LENGTH or len(password) > MAX_LENGTH:
        return [_("The password needs 8-200 characters.")]
    if not password.strip():
        return [_("The password cannot be only spaces.")]
    folded = password.strip().lower()
    personal = _personal_words(email, name)
    if folded in personal[:2] or (email and email.strip().lower() in folded):
        return [_("The password cannot be your e-mail address.")]
    if folded in _common() or re.sub(r"\s+", "", folded) in _common():
        return [_("This password is one of the most common leaked passwords; choose another.")]
    estimate = zxcvbn(password[:_ESTIMATE_CHARS], user_inputs=personal)
    if estimate["score"] < min_score:
        return [
            _(
                "This password is too easy to guess (common words, names, keyboard patterns, "
                "repeats or your own details); a few unrelated words make a strong one."
            )
        ]
    return []
