"""The embedded model server (onnxruntime-genai, int4 SmolLM2) speaks the chat-completions
protocol the ``openai_compat`` provider expects: models, health, completions with usage,
streaming, stop strings, and clear errors on bad requests."""

from __future__ import annotations

import httpx
import openai

from learnloop.llm import local_server
from learnloop.llm.providers.base import ChatRequest, Completion
from learnloop.services.llm_usage import gateway_for
from tests.llm.conftest import make_ctx


def test_health_models_and_a_completion(model_server: local_server.RunningServer) -> None:
    root = model_server.base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health", timeout=10).json() == {"status": "ok"}
    models = httpx.get(f"{model_server.base_url}/models", timeout=10).json()
    assert models["data"][0]["id"] == model_server.model
    client = openai.OpenAI(base_url=model_server.base_url, api_key="none", max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model=model_server.model,
        messages=[{"role": "user", "content": "Name one colour."}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.choices[0].message.content
    assert (
        reply.usage is not None and 0 < reply.usage.completion_tokens <= 8 and reply.usage.prompt_tokens > 5
    )
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_streaming_gives_the_same_text_as_one_reply(model_server: local_server.RunningServer) -> None:
    client = openai.OpenAI(base_url=model_server.base_url, api_key="none", max_retries=0, timeout=120)
    ask = {
        "model": model_server.model,
        "messages": [{"role": "user", "content": "Count: one, two,"}],
        "max_tokens": 10,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**ask).choices[0].message.content
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(**ask, stream=True)
        if c.choices
    ]
    assert len([p for p in pieces if p]) > 1 and "".join(pieces) == whole


def test_stop_strings_and_bad_requests(model_server: local_server.RunningServer) -> None:
    client = openai.OpenAI(base_url=model_server.base_url, api_key="none", max_retries=0, timeout=120)
    ask = {
        "model": model_server.model,
        "messages": [{"role": "user", "content": "Write the numbers from 1 to 9 separated by spaces."}],
        "max_tokens": 24,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**ask).choices[0].message.content or ""
    if " " in whole.strip():
        cut = client.chat.completions.create(**ask, stop=[" "]).choices[0].message.content or ""
        assert " " not in cut and whole.startswith(cut)
    for bad in ({"messages": []}, {"messages": [{"role": "wizard", "content": "x"}]}, {"max_tokens": 0}):
        r = httpx.post(f"{model_server.base_url}/chat/completions", json={**ask, **bad}, timeout=30)
        assert r.status_code == 422


def test_the_gateway_calls_it_as_an_openai_compatible_provider(
    tmp_path,  # type: ignore[no-untyped-def]
    model_server: local_server.RunningServer,
) -> None:
    ctx = make_ctx(
        tmp_path,
        llm_tutor="openai_compat",
        llm_base_url=model_server.base_url,
        llm_model=model_server.model,
        llm_timeout_s=120,
    )
    request = ChatRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=6)
    reply = gateway_for(ctx).complete("tutor", request)
    assert isinstance(reply, Completion) and reply.text and reply.completion_tokens > 0
    streamed = list(gateway_for(ctx).stream("tutor", request))
    assert isinstance(streamed[-1], Completion) and streamed[-1].text
