"""The one validation of a learner's answer payload, for practice and skill checks alike.

An answer is a JSON object with the field its item's kind reads: ``choice``, ``value``,
``text`` or ``code``. Unknown fields, values of the wrong type, numbers that are not finite
(``1e400``, ``10**400``), text the database cannot store (NUL, a lone surrogate) and payloads
over the size limit are refused with a clear message before anything is scored or stored;
what is stored is exactly the one field the item reads.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from learnloop.content.models import Item
from learnloop.content.scoring import AnswerError, parse_number
from learnloop.errors import InvalidInput, TooLarge
from learnloop.i18n import _
from learnloop.services.context import AppContext
from learnloop.store.guard import text_problem

#: the field each item kind reads
FIELDS = {"choice": "choice", "numeric": "value", "text": "text", "code": "code"}
#: the largest number a numeric answer may be (beyond it nothing is a sensible answer)
NUMBER_LIMIT = 1e15


def _storable(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _bounded(value: float) -> float:
    if not -NUMBER_LIMIT <= value <= NUMBER_LIMIT:  # also refuses NaN
        raise ValueError(_("The number must be between -10^15 and 10^15."))
    return value


#: text that can be stored on both backends
SafeText = Annotated[str, AfterValidator(_storable)]
#: a finite number of sensible size (JSON integers of any length are refused, not overflowed)
Number = Annotated[StrictInt | StrictFloat, AfterValidator(_bounded)]


class AnswerPayload(BaseModel):
    """``{"choice": "b"} | {"value": 0.5} | {"text": "..."} | {"code": "..."}``"""

    model_config = ConfigDict(extra="forbid")

    choice: Annotated[SafeText, Field(max_length=40)] | None = None
    value: Number | Annotated[SafeText, Field(max_length=100)] | None = None
    text: SafeText | None = None
    code: SafeText | None = None


#: 1,234 and 1,234,567.5: commas that group thousands (the first group never starts with 0)
_THOUSANDS = re.compile(r"[1-9]\d{0,2}(,\d{3})+(\.\d*)?")
#: 1.234,5: points that group thousands and a decimal comma
_GROUPED_DECIMAL_COMMA = re.compile(r"[1-9]\d{0,2}(\.\d{3})+,\d+")
#: 1,5 and ,5 and 0,500: a decimal comma
_DECIMAL_COMMA = re.compile(r"\d*,\d+")
_NUMBER_PARTS = re.compile(r"\s*([+\-\u2212]?)\s*(.*?)\s*(%?)\s*")


def numeric_text(value: str) -> str:
    """A typed number with its commas read the one way they can be: ``1,5`` is 1.5 (a decimal
    comma), ``1,234,567`` and ``1,234.5`` group thousands, ``1.234,5`` is 1234.5. ``1,500``
    could be 1.5 or 1500 and is refused, as is anything that is not a number, with a message
    that says what to write; the answer is never silently read as another number."""
    text = value.strip()
    if not text:
        raise InvalidInput(_("The answer is empty: type a number."))
    parts = _NUMBER_PARTS.fullmatch(text)
    if "," in text and parts:
        sign, body, percent = parts.groups()
        if _GROUPED_DECIMAL_COMMA.fullmatch(body):
            body = body.replace(".", "").replace(",", ".")
        elif _THOUSANDS.fullmatch(body):
            if body.count(",") == 1 and "." not in body:
                raise InvalidInput(
                    _(
                        "'%(value)s' could be %(decimal)s or %(whole)s. Write decimals with a point "
                        "(%(decimal)s) and whole numbers without a comma (%(whole)s)."
                    )
                    % {"value": text, "decimal": body.replace(",", "."), "whole": body.replace(",", "")}
                )
            body = body.replace(",", "")
        elif _DECIMAL_COMMA.fullmatch(body):
            body = body.replace(",", ".")
        else:
            raise InvalidInput(_("'%(value)s' is not a number.") % {"value": text})
        text = sign + body + percent
    try:
        parse_number(text)
    except AnswerError:
        raise InvalidInput(_("'%(value)s' is not a number.") % {"value": value.strip()}) from None
    return text


def _message(error: Any) -> str:
    where = ".".join(str(x) for x in error["loc"] if not isinstance(x, int))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def clean_answer(
    item: Item, payload: object, max_bytes: int, kinds: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The stored form of ``payload`` as an answer to ``item``: ``{field: value}``.

    ``InvalidInput`` (422) for a payload of the wrong shape, ``TooLarge`` (413) over
    ``max_bytes`` of JSON; ``kinds`` limits the item kinds answered here (skill checks)."""
    if not isinstance(payload, dict):
        raise InvalidInput(_("The answer must be a JSON object."))
    try:
        size = len(json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError):
        raise InvalidInput(_("The answer must be a JSON object.")) from None
    if size > max_bytes:
        raise TooLarge(
            _("The answer is %(size)d bytes; the limit is %(limit)d.") % {"size": size, "limit": max_bytes}
        )
    try:
        parsed = AnswerPayload.model_validate(payload)
    except ValidationError as exc:
        details = [_message(e) for e in exc.errors(include_url=False)]
        raise InvalidInput(_("The answer is not valid."), details=details) from None
    if kinds is not None and item.kind not in kinds:
        raise InvalidInput(_("This item cannot be answered here."))
    field = FIELDS[item.kind]
    value = getattr(parsed, field)
    if value is None:
        raise InvalidInput(
            _("A %(kind)s answer needs the field '%(field)s'.") % {"kind": item.kind, "field": field}
        )
    if item.kind == "numeric" and isinstance(value, str):
        value = numeric_text(value)
    return {field: value}


def shown_answer(item: Item, answer: dict[str, Any]) -> str | None:
    """The learner's answer to ``item`` as they would read it on the feedback page: the chosen
    option with its text, the number with the item's unit, the text or code as written."""
    field = FIELDS[item.kind]
    value = answer.get(field)
    if value is None:
        return None
    if item.kind == "choice":
        options = item.options or {}
        return f"{value}) {options[value]}" if value in options else str(value)
    if item.kind == "numeric":
        return f"{value} {item.unit}" if item.unit else str(value)
    return str(value)


def shown_answer_to(
    ctx: AppContext, item_id: str, answer: dict[str, Any], org_id: int | None = None
) -> str | None:
    """:func:`shown_answer` for the item ``item_id`` of the active pack (as organisation
    ``org_id`` sees it), in the UI language."""
    with ctx.session() as session:
        item = ctx.active_pack(session, org_id).localized().items.get(item_id)
    return None if item is None else shown_answer(item, answer)
