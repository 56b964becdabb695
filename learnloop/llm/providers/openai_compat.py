"""Any ``/v1/chat/completions`` server (OpenAI, vLLM, Ollama, `transformers serve`) via the ``openai`` client.

The client's own retries are off: the gateway retries with backoff and falls back, so one
policy governs every provider. Error messages are reduced to their kind and HTTP status,
so nothing the server echoes (headers, keys) reaches a log or a page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from learnloop.llm.providers.base import ChatRequest, Completion, Endpoint, ProviderError


def _client(endpoint: Endpoint) -> Any:
    try:
        from openai import OpenAI
    except ImportError:
        raise ProviderError(
            "missing", "the openai package is not installed (pip install 'learnloop[llm]')", retryable=False
        ) from None
    return OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key.get_secret_value() or "none",
        timeout=endpoint.timeout_s,
        max_retries=0,
    )


def _translate(exc: Exception) -> ProviderError:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("timeout", "the model service did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("connection", "the model service could not be reached")
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        return ProviderError(
            "status", f"the model service answered HTTP {code}", retryable=code == 429 or code >= 500
        )
    return ProviderError("error", f"the model call failed ({type(exc).__name__})")


class OpenAICompatProvider:
    name = "openai_compat"

    def __init__(self, endpoint: Endpoint):
        if not endpoint.base_url or not endpoint.model:
            raise ProviderError("config", "no base URL or model is configured for this task", retryable=False)
        self.endpoint = endpoint

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_schema is not None:
            args["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": request.json_schema, "strict": True},
            }
        return args

    def complete(self, request: ChatRequest) -> Completion:
        start = time.monotonic()
        try:
            reply = _client(self.endpoint).chat.completions.create(**self._arguments(request))
        except ProviderError:
            raise
        except Exception as exc:
            raise _translate(exc) from None
        if not reply.choices:
            raise ProviderError("empty", "the model service returned no choices")
        text = reply.choices[0].message.content or ""
        usage = reply.usage
        return Completion(
            text=text,
            provider=self.name,
            model=self.endpoint.model,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_ms=int((time.monotonic() - start) * 1000),
        )

    def stream(self, request: ChatRequest) -> Iterator[str | Completion]:
        """Yield text pieces as they arrive, then the whole :class:`Completion`."""
        start = time.monotonic()
        deadline = start + self.endpoint.timeout_s
        pieces: list[str] = []
        prompt_tokens = completion_tokens = 0
        try:
            stream = _client(self.endpoint).chat.completions.create(
                **self._arguments(request), stream=True, stream_options={"include_usage": True}
            )
            for chunk in stream:
                if time.monotonic() > deadline:
                    stream.close()
                    raise ProviderError("timeout", "the model service did not finish in time")
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
                    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
                for choice in chunk.choices or []:
                    piece = getattr(choice.delta, "content", None)
                    if piece:
                        pieces.append(piece)
                        yield piece
        except ProviderError:
            raise
        except Exception as exc:
            raise _translate(exc) from None
        yield Completion(
            text="".join(pieces),
            provider=self.name,
            model=self.endpoint.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens or len(pieces),
            latency_ms=int((time.monotonic() - start) * 1000),
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        try:
            reply = _client(self.endpoint).embeddings.create(model=self.endpoint.model, input=texts)
        except Exception as exc:
            raise _translate(exc) from None
        vectors = np.array([row.embedding for row in reply.data], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
