"""What a submission returned, as the sandbox runner encoded it, against what a case expects.

The runner (``runner.py``) describes a value with exact type checks; this module, in the judge's
process, decides whether that description matches the case's ``expect`` (a YAML value) and
renders both for a learner. The rules, as authors see them in docs/authoring.md:

- numbers compare within the case's tolerance (``math.isclose`` with ``rel_tol`` and
  ``abs_tol`` both ``tol``); an int and a float may match, a bool matches only a bool;
  ``.nan`` matches NaN, ``.inf`` infinity;
- a YAML list matches a list, a tuple, a NumPy array or a pandas Series' values, element by
  element; a YAML ``!!set`` matches a set or frozenset with the same elements;
- a YAML mapping matches a dict with the same keys, or a pandas DataFrame as column → values;
- strings compare exactly; anything the runner could not describe (an object of the
  submission's own class, a subclass of ``int``...) matches nothing.
"""

from __future__ import annotations

import base64
import math
from typing import Any

_NUMBER = (int, float)


class Decoded:
    """A value the runner described that has no plain JSON form."""

    __slots__ = ("kind", "data")

    def __init__(self, kind: str, data: Any):
        self.kind = kind
        self.data = data


def decode(value: Any) -> Any:
    """Turn the runner's JSON description into Python values (tagged ones as ``Decoded``)."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, data),) = value.items()
    elif "$np" in value:
        return decode(value.get("value"))
    else:
        return Decoded("other", "?")
    if tag == "$int":
        return int(str(data)[:5000]) if str(data).lstrip("-").isdigit() else Decoded("other", "int")
    if tag == "$float":
        return float(data) if data in ("nan", "inf", "-inf") else Decoded("other", "float")
    if tag == "$tuple":
        return tuple(decode(v) for v in data)
    if tag == "$dict":
        return Decoded("dict", [(decode(k), decode(v)) for k, v in data])
    if tag == "$set":
        return Decoded("set", [decode(v) for v in data])
    if tag == "$bytes":
        return base64.b64decode(str(data))
    if tag == "$ndarray":
        return Decoded("ndarray", decode(data.get("data")))
    if tag == "$series":
        return Decoded("series", decode(data.get("values")))
    if tag == "$frame":
        columns = [str(c) for c in data.get("columns", [])]
        rows = decode(data.get("rows", []))
        return Decoded("frame", {c: [row[i] for row in rows] for i, c in enumerate(columns)})
    if tag == "$other":
        return Decoded("other", str(data)[:200])
    return Decoded("other", "?")


def matches(expected: Any, got: Any, tol: float) -> bool:
    """Whether a decoded result ``got`` meets ``expected`` (see the module's rules)."""
    if isinstance(got, Decoded):
        if got.kind in ("ndarray", "series"):
            return isinstance(expected, list) and matches(expected, got.data, tol)
        if got.kind == "set":
            return isinstance(expected, (set, frozenset, list)) and _same_elements(
                list(expected), got.data, tol
            )
        if got.kind == "dict":
            return isinstance(expected, dict) and _same_mapping(expected, got.data, tol)
        if got.kind == "frame":
            return isinstance(expected, dict) and _same_mapping(expected, list(got.data.items()), tol)
        return False
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, _NUMBER) and isinstance(got, _NUMBER):
        if isinstance(expected, int) and isinstance(got, int):
            return expected == got
        e, g = float(expected), float(got)
        if math.isnan(e) or math.isnan(g):
            return math.isnan(e) and math.isnan(g)
        return math.isclose(e, g, rel_tol=tol, abs_tol=tol)
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(got, (list, tuple))
            and len(expected) == len(got)
            and all(matches(e, g, tol) for e, g in zip(expected, got, strict=True))
        )
    if isinstance(expected, (set, frozenset)):
        return False  # only a set (``Decoded("set")``, above) matches a set
    if expected is None or isinstance(expected, (str, bytes)):
        return type(expected) is type(got) and expected == got
    return False


def _same_elements(expected: list[Any], got: list[Any], tol: float) -> bool:
    if len(expected) != len(got):
        return False
    left = list(got)
    for e in expected:
        for i, g in enumerate(left):
            if matches(e, g, tol):
                del left[i]
                break
        else:
            return False
    return True


def _same_mapping(expected: dict[Any, Any], pairs: list[tuple[Any, Any]], tol: float) -> bool:
    if len(expected) != len(pairs):
        return False
    for key, value in pairs:
        if isinstance(key, (Decoded, list)) or key not in expected:
            return False
        if not matches(expected[key], value, tol):
            return False
    return True


def show(value: Any, limit: int = 300) -> str:
    """A Python-like rendering of a value for a learner, at most ``limit`` characters."""
    text = _show(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    if isinstance(value, Decoded):
        if value.kind == "other":
            return f"<{value.data} object>"
        if value.kind == "set":
            return "{" + ", ".join(_show(v) for v in value.data) + "}" if value.data else "set()"
        if value.kind == "dict":
            return "{" + ", ".join(f"{_show(k)}: {_show(v)}" for k, v in value.data) + "}"
        if value.kind == "ndarray":
            return f"array({_show(value.data)})"
        if value.kind == "series":
            return f"Series({_show(value.data)})"
        if value.kind == "frame":
            return "DataFrame(" + _show(Decoded("dict", list(value.data.items()))) + ")"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(_show(v) for v in sorted(value, key=repr)) + "}" if value else "set()"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_show(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_show(k)}: {_show(v)}" for k, v in value.items()) + "}"
    return repr(value)
