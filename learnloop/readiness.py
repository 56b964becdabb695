"""What this process is still getting ready (models loading in the background at start).

``/healthz`` answers 503 "starting" while anything here is warming up, so a load balancer or
a deploy script sends traffic only once the first request will be served at full speed. A
warm-up that fails does not keep the process unready: it is reported, and the feature falls
back (the tutor retrieves by words when the embedding model cannot load).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("learnloop")

_lock = threading.Lock()
_warming: Counter[str] = Counter()
_failed: dict[str, str] = {}


def warming() -> list[str]:
    """The parts still warming up (empty when ready)."""
    with _lock:
        return sorted(name for name, n in _warming.items() if n > 0)


def failed() -> dict[str, str]:
    """Parts whose warm-up failed, with the error's type (the process serves without them)."""
    with _lock:
        return dict(_failed)


def warm_up_in_background(name: str, work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` in a daemon thread, reporting ``name`` as warming until it returns."""
    with _lock:
        _warming[name] += 1
        _failed.pop(name, None)

    def run() -> None:
        try:
            work()
        except Exception as exc:  # the feature falls back; the process must still become ready
            log.exception("warming up %s failed", name)
            with _lock:
                _failed[name] = type(exc).__name__
        finally:
            with _lock:
                _warming[name] -= 1

    thread = threading.Thread(target=run, name=f"warm-up-{name}", daemon=True)
    thread.start()
    return thread
