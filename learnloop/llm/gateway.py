"""The one entry for every model call.

For each task (tutor, grade, author, embed) the settings give an ordered list of providers,
e.g. ``LEARNLOOP_LLM_TUTOR=openai_compat,offline``. :meth:`Gateway.complete` walks it:
a model provider is called with a timeout and retried with exponential backoff on errors
that may pass (never on a timeout: a slow service should not make the learner wait twice);
when every model provider failed or the organisation's budget is spent, and ``offline`` is
in the list, the caller gets an :class:`OfflineRoute` with the reason to show, and runs its
own offline path. Responses are cached by (endpoint, model, prompt, parameters); every call,
hit, fallback and refusal is recorded with its tokens and cost through a :class:`Ledger`
(the database, in ``services.llm_usage``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from learnloop import metrics
from learnloop.config import Settings
from learnloop.errors import LearnloopError, Unavailable
from learnloop.i18n import _
from learnloop.llm.embeddings import embeddings_available, shared_embedder
from learnloop.llm.providers.base import (
    PROVIDERS,
    ChatProvider,
    ChatRequest,
    Completion,
    Endpoint,
    ProviderError,
    Task,
)
from learnloop.llm.providers.openai_compat import OpenAICompatProvider

log = logging.getLogger("learnloop.llm")


class BudgetSpent(LearnloopError):
    status = 429
    code = "budget_spent"


class ModelUnavailable(Unavailable):
    code = "model_unavailable"


@dataclass
class UsageEvent:
    task: str
    provider: str
    model: str
    org_id: int | None
    user_id: int | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    outcome: str = "ok"
    latency_ms: int = 0


class Ledger(Protocol):
    """Where the gateway keeps its cache and accounts (the database in the product)."""

    def cached(self, key: str) -> dict[str, Any] | None: ...

    def store(self, key: str, model: str, response: dict[str, Any]) -> None: ...

    def forget(self, key: str) -> None: ...

    def budget_left(self, org_id: int | None) -> float | None: ...

    # optional: ``quota_spent(org_id, user_id) -> str | None``, the reason a member's or their
    # team's monthly quota refuses a call (DbLedger has it)

    def record(self, event: UsageEvent) -> None: ...


class NullLedger:
    """No cache, no budget, no accounts: for scripts and tests that need none."""

    def cached(self, key: str) -> dict[str, Any] | None:
        return None

    def store(self, key: str, model: str, response: dict[str, Any]) -> None:
        return None

    def forget(self, key: str) -> None:
        return None

    def budget_left(self, org_id: int | None) -> float | None:
        return None

    def record(self, event: UsageEvent) -> None:
        return None


@dataclass
class OfflineRoute:
    """Use the offline path; ``notices`` say why when it is a fallback (shown to the learner)."""

    notices: list[str] = field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        return bool(self.notices)


def parse_route(value: str) -> list[str]:
    route = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in route if p not in PROVIDERS]
    if unknown:
        raise LearnloopError(f"unknown model provider(s) {unknown}; use {', '.join(PROVIDERS)}")
    return route or ["offline"]


def _failure_notice(error: ProviderError) -> str:
    if error.kind == "timeout":
        return _("The model service was too slow, so this answer comes from the offline helper.")
    return _("The model service is not available, so this answer comes from the offline helper.")


class Gateway:
    def __init__(
        self, settings: Settings, ledger: Ledger | None = None, sleep: Callable[[float], None] = time.sleep
    ):
        self.settings = settings
        self.ledger: Ledger = ledger or NullLedger()
        self._sleep = sleep

    # -- configuration -------------------------------------------------------------------
    def route(self, task: Task) -> list[str]:
        return parse_route(str(getattr(self.settings, f"llm_{task}")))

    def endpoint(self, task: Task) -> Endpoint:
        s = self.settings
        key = getattr(s, f"llm_{task}_api_key")
        timeout = getattr(s, f"llm_{task}_timeout_s")
        return Endpoint(
            base_url=getattr(s, f"llm_{task}_base_url") or s.llm_base_url,
            api_key=key if key.get_secret_value() else s.llm_api_key,
            model=getattr(s, f"llm_{task}_model") or s.llm_model,
            timeout_s=float(timeout if timeout is not None else s.llm_timeout_s),
        )

    def provider(self, name: str, task: Task) -> ChatProvider:
        if name == "openai_compat":
            return OpenAICompatProvider(self.endpoint(task))
        raise ProviderError("config", f"{name} is not a chat provider", retryable=False)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        s = self.settings
        return (
            prompt_tokens * s.llm_price_prompt_per_mtok + completion_tokens * s.llm_price_completion_per_mtok
        ) / 1e6

    # -- accounting ------------------------------------------------------------------------
    def _record(
        self,
        task: str,
        provider: str,
        model: str,
        org_id: int | None,
        user_id: int | None,
        completion: Completion | None = None,
        outcome: str = "ok",
        latency_ms: int = 0,
    ) -> None:
        event = UsageEvent(
            task=task,
            provider=provider,
            model=model,
            org_id=org_id,
            user_id=user_id,
            outcome=outcome,
            latency_ms=latency_ms,
        )
        if completion is not None:
            event.prompt_tokens = completion.prompt_tokens
            event.completion_tokens = completion.completion_tokens
            event.cached = completion.cached
            event.latency_ms = completion.latency_ms
            event.cost_usd = (
                0.0
                if completion.cached
                else self.cost(completion.prompt_tokens, completion.completion_tokens)
            )
        metrics.observe_model_call(event)
        try:
            self.ledger.record(event)
        except Exception:  # accounting must never break the learner's request
            log.exception("could not record model usage")

    def _budget_spent(self, org_id: int | None) -> bool:
        left = self.ledger.budget_left(org_id)
        return left is not None and left <= 0

    def _refusal(self, org_id: int | None, user_id: int | None) -> str | None:
        """Why a model may not be called for this caller now: the organisation's budget is spent,
        or the caller's or their team's quota is used up (a ledger with ``quota_spent``)."""
        if self._budget_spent(org_id):
            return _("Your organisation's model budget for this month is spent.")
        quota_spent = getattr(self.ledger, "quota_spent", None)
        return quota_spent(org_id, user_id) if quota_spent is not None else None

    def forget(self, request: ChatRequest, task: Task = "grade") -> None:
        """Drop a cached answer (a reply the caller found unusable)."""
        try:
            self.ledger.forget(request.cache_key(self.endpoint(task)))
        except Exception:
            log.exception("could not drop a cached model response")

    # -- chat ------------------------------------------------------------------------------
    def complete(
        self,
        task: Task,
        request: ChatRequest,
        *,
        org_id: int | None = None,
        user_id: int | None = None,
        use_cache: bool = True,
    ) -> Completion | OfflineRoute:
        """The first model answer along the task's route, or an :class:`OfflineRoute`."""
        notices: list[str] = []
        budget_refusals = 0
        for name in self.route(task):
            if name == "offline":
                self._record(task, "offline", "", org_id, user_id, outcome="fallback" if notices else "ok")
                return OfflineRoute(notices)
            endpoint = self.endpoint(task)
            refusal = self._refusal(org_id, user_id)
            if refusal:
                self._record(task, name, endpoint.model, org_id, user_id, outcome="budget")
                notices.append(refusal)
                budget_refusals += 1
                continue
            key = request.cache_key(endpoint)
            if use_cache and self.settings.llm_cache:
                hit = self.ledger.cached(key)
                if hit is not None:
                    completion = Completion(
                        text=str(hit.get("text", "")),
                        provider=name,
                        model=endpoint.model,
                        prompt_tokens=int(hit.get("prompt_tokens", 0)),
                        completion_tokens=int(hit.get("completion_tokens", 0)),
                        cached=True,
                    )
                    self._record(task, name, endpoint.model, org_id, user_id, completion)
                    return completion
            try:
                completion = self._call_with_retries(name, task, request)
            except ProviderError as error:
                log.warning("model call failed: task=%s provider=%s kind=%s", task, name, error.kind)
                self._record(
                    task,
                    name,
                    endpoint.model,
                    org_id,
                    user_id,
                    outcome="timeout" if error.kind == "timeout" else "error",
                )
                notices.append(_failure_notice(error))
                continue
            self._record(task, name, endpoint.model, org_id, user_id, completion)
            if use_cache and self.settings.llm_cache and completion.text:
                try:
                    self.ledger.store(key, endpoint.model, completion.to_cache())
                except Exception:
                    log.exception("could not cache a model response")
            completion.notices = notices
            return completion
        if budget_refusals and budget_refusals == len(notices):
            raise BudgetSpent(notices[0] + " " + _("Ask an administrator to raise it."))
        raise ModelUnavailable(_("The model service is not available right now. Please try again later."))

    def _call_with_retries(self, name: str, task: Task, request: ChatRequest) -> Completion:
        provider = self.provider(name, task)
        attempts = 1 + max(self.settings.llm_retries, 0)
        for attempt in range(attempts):
            try:
                return provider.complete(request)
            except ProviderError as error:
                if not error.retryable or error.kind == "timeout" or attempt == attempts - 1:
                    raise
                self._sleep(self.settings.llm_backoff_s * (2**attempt))
        raise AssertionError("unreachable")

    def stream(
        self, task: Task, request: ChatRequest, *, org_id: int | None = None, user_id: int | None = None
    ) -> Iterator[str | Completion | OfflineRoute]:
        """Text pieces then the :class:`Completion`; or an :class:`OfflineRoute` (maybe after pieces).

        A failure before the first piece moves on along the route; a failure mid-stream ends
        with an OfflineRoute too, so the caller can replace what it showed.
        """
        notices: list[str] = []
        budget_refusals = 0
        for name in self.route(task):
            if name == "offline":
                self._record(task, "offline", "", org_id, user_id, outcome="fallback" if notices else "ok")
                yield OfflineRoute(notices)
                return
            endpoint = self.endpoint(task)
            refusal = self._refusal(org_id, user_id)
            if refusal:
                self._record(task, name, endpoint.model, org_id, user_id, outcome="budget")
                notices.append(refusal)
                budget_refusals += 1
                continue
            start = time.monotonic()
            try:
                for event in self.provider(name, task).stream(request):
                    if isinstance(event, Completion):
                        event.notices = notices
                        self._record(task, name, endpoint.model, org_id, user_id, event)
                    yield event
                return
            except ProviderError as error:
                log.warning("model stream failed: task=%s provider=%s kind=%s", task, name, error.kind)
                self._record(
                    task,
                    name,
                    endpoint.model,
                    org_id,
                    user_id,
                    outcome="timeout" if error.kind == "timeout" else "error",
                    latency_ms=int((time.monotonic() - start) * 1000),
                )
                notices.append(_failure_notice(error))
        if budget_refusals and budget_refusals == len(notices):
            raise BudgetSpent(notices[0] + " " + _("Ask an administrator to raise it."))
        raise ModelUnavailable(_("The model service is not available right now. Please try again later."))

    # -- embeddings ------------------------------------------------------------------------
    def embedder(self) -> tuple[Callable[[list[str]], np.ndarray], str] | None:
        """The embedding function of the ``embed`` route and its model name, or None (words only)."""
        for name in self.route("embed"):
            if name == "offline":
                if not embeddings_available():
                    return None
                local = shared_embedder(self.settings.llm_embed_threads)
                return local.encode, local.name
            endpoint = self.endpoint("embed")
            if endpoint.base_url and endpoint.model:
                remote = OpenAICompatProvider(endpoint)
                return remote.embed, f"{endpoint.base_url}|{endpoint.model}"
        return None
