"""An OpenAI-compatible model server over onnxruntime-genai (an int4 ONNX model on the CPU).

The embedded model server of the tests and benchmarks (``local_server.py`` starts it): the
same protocol as any ``openai_compat`` provider, about ten times as many tokens per CPU-second
as ``transformers serve`` with the same SmolLM2 (``bench/serving.py``).

- ``GET /health``: 200 once the model is loaded.
- ``GET /v1/models``: the one model (any ``model`` name in a request is served by it).
- ``POST /v1/chat/completions``: ``messages``, ``max_tokens`` (or ``max_completion_tokens``),
  ``temperature``, ``top_p``, ``stop``, ``stream`` (server-sent events, ending ``[DONE]``).
  ``response_format`` is accepted and not enforced: callers validate what they get (the
  grader does).

One generation at a time (a lock); requests wait their turn. Run it with
``python -m learnloop.llm.ort_server --model DIR [--port P] [--threads N] [--parent-pid PID]``.
With ``--parent-pid`` the server exits once that process is gone (the starter was killed
with SIGKILL and could not stop it), so a killed test run or benchmark leaves no server behind.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(pattern="^(system|user|assistant|tool|developer)$")
    content: str | list[dict[str, Any]] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = ""
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    seed: int | None = None


class Engine:
    """The loaded model and tokenizer; :meth:`generate` yields text pieces."""

    def __init__(self, model_dir: Path, threads: int = 2, name: str | None = None):
        import onnxruntime_genai as og

        self.og = og
        config = og.Config(str(model_dir))
        options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self.model = og.Model(config)
        self.tokenizer = og.Tokenizer(self.model)
        self.name = name or str(model_dir)
        self.context_length = int(
            json.loads((model_dir / "genai_config.json").read_text())["model"]["context_length"]
        )
        self.lock = threading.Lock()

    def prompt_tokens(self, messages: list[Message]) -> Any:
        chat = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in messages
        ]
        prompt = self.tokenizer.apply_chat_template(json.dumps(chat), add_generation_prompt=True)
        return self.tokenizer.encode(prompt)

    def generate(self, body: ChatIn, usage: dict[str, int]) -> Iterator[str]:
        """Text pieces of the reply (under the lock); ``usage`` is filled in as it goes."""
        og = self.og
        max_new = body.max_completion_tokens or body.max_tokens or 256
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        with self.lock:
            tokens = self.prompt_tokens(body.messages)
            usage["prompt_tokens"] = len(tokens)
            if len(tokens) >= self.context_length:
                raise HTTPException(
                    400, f"the prompt has {len(tokens)} tokens; the context holds {self.context_length}"
                )
            params = og.GeneratorParams(self.model)
            search: dict[str, Any] = {"max_length": min(len(tokens) + max_new, self.context_length)}
            temperature = 1.0 if body.temperature is None else body.temperature
            if temperature > 0:
                search.update(do_sample=True, temperature=temperature, top_p=body.top_p or 1.0, top_k=50)
                if body.seed is not None:
                    search["random_seed"] = body.seed
            else:
                search["do_sample"] = False
            params.set_search_options(**search)
            generator = og.Generator(self.model, params)
            generator.append_tokens(tokens)
            stream = self.tokenizer.create_stream()
            hold = max((len(x) for x in stops), default=1) - 1  # a stop string may span pieces
            text, sent, produced = "", 0, 0
            while not generator.is_done():
                generator.generate_next_token()
                produced += 1
                usage["completion_tokens"] = produced
                piece = stream.decode(generator.get_next_tokens()[0])
                if not stops:
                    if piece:
                        yield piece
                    continue
                text += piece
                found = [i for i in (text.find(x) for x in stops if x) if i >= 0]
                if found:
                    if min(found) > sent:
                        yield text[sent : min(found)]
                    return
                if len(text) - hold > sent:
                    yield text[sent : len(text) - hold]
                    sent = len(text) - hold
            if stops and len(text) > sent:
                yield text[sent:]
            usage["length"] = int(produced >= max_new)


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="learnloop onnxruntime-genai server", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": engine.name, "object": "model", "created": 0, "owned_by": "local"}],
        }

    @app.post("/v1/chat/completions", response_model=None)
    def chat(body: ChatIn) -> JSONResponse | StreamingResponse:
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0}

        def finish_reason() -> str:
            return "length" if usage.get("length") else "stop"

        def usage_block() -> dict[str, int]:
            return {
                "prompt_tokens": usage["prompt_tokens"],
                "completion_tokens": usage["completion_tokens"],
                "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
            }

        if not body.stream:
            text = "".join(engine.generate(body, usage))
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": engine.name,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": finish_reason(),
                        }
                    ],
                    "usage": usage_block(),
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None = None, with_usage: bool = False) -> str:
            data: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": engine.name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if with_usage:
                data["usage"] = usage_block()
            return f"data: {json.dumps(data)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            try:
                for piece in engine.generate(body, usage):
                    yield chunk({"content": piece})
            except HTTPException as exc:
                yield f"data: {json.dumps({'error': {'message': exc.detail}})}\n\n"
                return
            yield chunk({}, finish_reason(), with_usage=True)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> threading.Thread:
    """Watch ``parent_pid`` from a daemon thread and stop this process (SIGTERM, so uvicorn
    shuts down cleanly) once it is gone: an orphan is re-parented, so ``os.getppid()`` changes."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenAI-compatible server over onnxruntime-genai")
    parser.add_argument("--model", type=Path, required=True, help="folder with genai_config.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per generation")
    parser.add_argument("--name", default=None, help="the model's id in /v1/models (default: the folder)")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit once this process is gone")
    args = parser.parse_args(argv)
    if not (args.model / "genai_config.json").exists():
        parser.error(
            f"{args.model}: no genai_config.json (convert with `python -m learnloop.llm.local_server --convert`)"
        )
    import uvicorn

    if args.parent_pid is not None:
        exit_with_parent(args.parent_pid)
    engine = Engine(args.model, threads=args.threads, name=args.name)
    uvicorn.run(create_app(engine), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
