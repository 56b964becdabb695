"""The program that runs inside the sandbox: it loads a submission and evaluates one case at a time.

This file is never imported by the server. Its source is handed to the sandbox's own Python
(``python3 -I -c <this file>``), which has only the standard library and NumPy/pandas from
the operating system. It speaks JSON lines with the judge (``learnloop.sandbox.judge``):

- judge → runner, first line: ``{"source": "<the submission>", "limits": {...}}``
- runner → judge: ``{"loaded": true, "stdout": "..."}`` or ``{"error": {...}}``
- judge → runner, per case: ``{"id": "<nonce>", "setup": "...", "call": "..."}``
- runner → judge: ``{"id": "<nonce>", "value": <encoded>, "stdout": "..."}`` or
  ``{"id": "<nonce>", "raised": {"types": [...], "message": "..."}, "stdout": "..."}``

The runner knows nothing of expected values: it only reports what the submission returned,
encoded with exact type checks (``type(x) is int``), so an object that claims to equal anything
is reported as what it is. The comparison happens in the judge, out of the submission's reach.
Whatever a submission prints, patches or forges here can at most misreport its own return
value, which is no better than returning that value. Nothing outlives the run: the sandbox's
PID namespace is torn down when the judge closes it.
"""

import base64
import io
import json
import os
import resource
import sys

MAX_LINE = 1_000_000
MAX_PRINT = 4_000
MAX_ITEMS = 100_000
MAX_DEPTH = 40

_type = type
_isinstance = isinstance
_len = len
_repr = repr


class _CappedOutput(io.TextIOBase):
    """``sys.stdout`` of the submission: keeps the first ``MAX_PRINT`` characters, counts the rest."""

    def __init__(self):
        self.parts = []
        self.kept = 0
        self.dropped = 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = MAX_PRINT - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, _len(text))
        self.dropped += max(0, _len(text) - max(room, 0))
        return _len(text)

    def take(self):
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[... {self.dropped} more characters not shown]"
        self.parts, self.kept, self.dropped = [], 0, 0
        return out


class _TooBig(Exception):
    pass


def _encode(value, depth=0, budget=None):
    """A JSON-safe, exactly typed description of ``value`` (see the judge's ``decode``)."""
    if budget is None:
        budget = [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooBig()
    t = _type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -(2**53) < value < 2**53 else {"$int": str(value)}
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            return {"$float": _repr(value)}
        return value
    if t is list:
        return [_encode(v, depth + 1, budget) for v in value]
    if t is tuple:
        return {"$tuple": [_encode(v, depth + 1, budget) for v in value]}
    if t is dict:
        return {
            "$dict": [
                [_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)] for k, v in value.items()
            ]
        }
    if t is set or t is frozenset:
        return {"$set": [_encode(v, depth + 1, budget) for v in value]}
    if t is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if t is numpy.ndarray:
            return {
                "$ndarray": {
                    "dtype": str(value.dtype),
                    "shape": list(value.shape),
                    "data": _encode(value.tolist(), depth + 1, budget),
                }
            }
        if _isinstance(value, numpy.generic) and t.__module__ == "numpy":
            return {"$np": str(value.dtype), "value": _encode(value.item(), depth + 1, budget)}
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        if t is pandas.Series:
            return {
                "$series": {
                    "name": _encode(value.name, depth + 1, budget)
                    if _type(value.name) in (str, int)
                    else None,
                    "index": _encode(value.index.tolist(), depth + 1, budget),
                    "values": _encode(value.tolist(), depth + 1, budget),
                }
            }
        if t is pandas.DataFrame:
            return {
                "$frame": {
                    "columns": _encode([str(c) for c in value.columns], depth + 1, budget),
                    "index": _encode(value.index.tolist(), depth + 1, budget),
                    "rows": _encode(value.values.tolist(), depth + 1, budget),
                }
            }
    return {"$other": "{}.{}".format(getattr(t, "__module__", "?"), getattr(t, "__qualname__", "?"))}


def _raised(exc):
    types = []
    for cls in _type(exc).__mro__:
        types.append("{}.{}".format(getattr(cls, "__module__", "?"), getattr(cls, "__qualname__", "?")))
    try:
        message = str(exc)[:500]
    except BaseException:
        message = ""
    return {"types": types[:20], "message": message}


def _where(exc):
    """The line of the submission an exception came from, if any."""
    line = getattr(exc, "lineno", None) if _isinstance(exc, SyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<submission>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _limits(limits):
    cpu = int(limits.get("cpu_s", 5))
    memory = int(limits.get("memory_mb", 512)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits.get("file_bytes", 1_000_000)),) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (int(limits.get("processes", 16)),) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main():
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)

    def read():
        line = b""
        while not line.endswith(b"\n"):
            chunk = requests.readline(MAX_LINE + 1 - _len(line))
            if not chunk:
                return None
            line += chunk
            if _len(line) > MAX_LINE:
                return None
        return json.loads(line.decode("utf-8"))

    def reply(message):
        try:
            data = json.dumps(message, ensure_ascii=True, allow_nan=False).encode("ascii") + b"\n"
        except (ValueError, TypeError, RecursionError):
            data = json.dumps({"id": message.get("id"), "unencodable": True}).encode("ascii") + b"\n"
        if _len(data) > MAX_LINE:
            data = json.dumps({"id": message.get("id"), "too_large": True}).encode("ascii") + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(replies, view) :]

    first = read()
    if first is None:
        return
    _limits(first.get("limits", {}))
    printed = _CappedOutput()
    sys.stdout = sys.stderr = printed
    namespace = {"__name__": "submission", "__builtins__": __builtins__}
    try:
        exec(compile(first["source"], "<submission>", "exec"), namespace)
    except BaseException as exc:  # a submission may raise anything, SystemExit included
        error = _raised(exc)
        error["line"] = _where(exc)
        reply({"error": error, "stdout": printed.take()})
        return
    reply({"loaded": True, "stdout": printed.take()})
    while True:
        request = read()
        if request is None:
            return
        scope = dict(namespace)
        message = {"id": request["id"]}
        try:
            if request.get("setup"):
                exec(compile(request["setup"], "<case setup>", "exec"), scope)
            value = eval(compile(request["call"], "<case>", "eval"), scope)
        except BaseException as exc:
            message["raised"] = _raised(exc)
        else:
            try:
                message["value"] = _encode(value)
            except _TooBig:
                message["too_large"] = True
            except BaseException as exc:
                message["raised"] = _raised(exc)
        message["stdout"] = printed.take()
        reply(message)


if __name__ == "__main__":
    main()
