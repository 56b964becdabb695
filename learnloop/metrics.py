"""Prometheus metrics: request latency per route, model calls (latency, tokens, cost), queue depth.

``GET /metrics`` serves them in the Prometheus text format. With several worker processes,
set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder writable by all of them (before they start):
each process writes its counts there and ``/metrics`` adds them up, whichever worker answers.

The job queue reports its depth through :func:`register_queue_depth`: it registers a function
that returns the number of waiting jobs per queue, read at every scrape.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from learnloop.llm.gateway import UsageEvent

log = logging.getLogger("learnloop")
CONTENT_TYPE = CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_LATENCY = Histogram(
    "learnloop_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template (unmatched paths share one label).",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    "learnloop_model_calls",
    "Model calls through the gateway, by task, provider and outcome (ok, cached, error, timeout, "
    "budget, fallback).",
    ["task", "provider", "outcome"],
    registry=REGISTRY,
)
MODEL_LATENCY = Histogram(
    "learnloop_model_call_duration_seconds",
    "Time of a model call that reached the provider (cache hits and offline routes excluded).",
    ["task", "provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0),
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "learnloop_model_tokens", "Tokens of model calls, by task and kind.", ["task", "kind"], registry=REGISTRY
)
MODEL_COST = Counter(
    "learnloop_model_cost_usd", "Cost of model calls in US dollars, by task.", ["task"], registry=REGISTRY
)

_queue_lock = threading.Lock()
_queue_depth: dict[str, Callable[[], Mapping[str, int]]] = {}


def register_queue_depth(name: str, depth: Callable[[], Mapping[str, int]]) -> None:
    """Have ``/metrics`` report ``depth()`` (waiting jobs per queue) as ``learnloop_queue_depth``.

    ``name`` identifies the source (registering the same name again replaces it)."""
    with _queue_lock:
        _queue_depth[name] = depth


def unregister_queue_depth(name: str) -> None:
    with _queue_lock:
        _queue_depth.pop(name, None)


class _QueueDepthCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "learnloop_queue_depth", "Jobs waiting in each queue, read at scrape time.", labels=["queue"]
        )
        with _queue_lock:
            sources = list(_queue_depth.items())
        for name, depth in sources:
            try:
                for queue, waiting in depth().items():
                    family.add_metric([queue], float(waiting))
            except Exception:  # a broken source must not hide the other metrics
                log.exception("queue depth source %s failed", name)
        yield family


_queue_collector = _QueueDepthCollector()
REGISTRY.register(_queue_collector)


def observe_model_call(event: UsageEvent) -> None:
    """Count one gateway call (called by the gateway as it records usage)."""
    outcome = "cached" if event.cached else event.outcome
    MODEL_CALLS.labels(event.task, event.provider, outcome).inc()
    if event.provider != "offline" and not event.cached and event.latency_ms > 0:
        MODEL_LATENCY.labels(event.task, event.provider).observe(event.latency_ms / 1000)
    if event.prompt_tokens:
        MODEL_TOKENS.labels(event.task, "prompt").inc(event.prompt_tokens)
    if event.completion_tokens:
        MODEL_TOKENS.labels(event.task, "completion").inc(event.completion_tokens)
    if event.cost_usd:
        MODEL_COST.labels(event.task).inc(event.cost_usd)


def exposition() -> bytes:
    """The metrics in the Prometheus text format (all worker processes in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_queue_collector)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class RequestMetrics:
    """ASGI middleware: the latency of every HTTP request, labelled by its route template."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template.startswith("/static") or template.startswith("/api/docs/assets"):
                template = template.split("/{", 1)[0]
            HTTP_LATENCY.labels(scope.get("method", ""), template, str(status)).observe(
                time.perf_counter() - start
            )
