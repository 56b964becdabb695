"""What a model provider is given and returns: an endpoint, a chat request, a completion."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import SecretStr

TASKS = ("tutor", "grade", "author", "embed")
Task = Literal["tutor", "grade", "author", "embed"]
PROVIDERS = ("openai_compat", "offline")


@dataclass(frozen=True)
class Endpoint:
    """Where a task's model lives. ``api_key`` is a SecretStr so it never prints."""

    base_url: str
    api_key: SecretStr
    model: str
    timeout_s: float

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r}, timeout_s={self.timeout_s})"


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    max_tokens: int = 256
    temperature: float = 0.0
    #: JSON schema the reply must follow (sent as response_format json_schema)
    json_schema: dict[str, Any] | None = None
    schema_name: str = "answer"

    def parameters(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "json_schema": self.json_schema,
        }

    def cache_key(self, endpoint: Endpoint) -> str:
        """Hash of (endpoint, model, prompt, parameters): equal requests share a cached answer."""
        blob = json.dumps(
            {
                "url": endpoint.base_url,
                "model": endpoint.model,
                "messages": self.messages,
                "parameters": self.parameters(),
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Completion:
    text: str
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    latency_ms: int = 0
    notices: list[str] = field(default_factory=list)

    def to_cache(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


class ProviderError(Exception):
    """A model call that failed; ``kind`` is timeout | connection | status | empty."""

    def __init__(self, kind: str, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


class ChatProvider(Protocol):
    name: str

    def complete(self, request: ChatRequest) -> Completion: ...

    def stream(self, request: ChatRequest) -> Iterator[str | Completion]: ...
