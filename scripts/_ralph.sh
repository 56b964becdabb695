# Sourced by test.sh after _setup.sh: Ralph, a real xAPI learning record store for the xAPI
# tests. ralph-malph 5.1.0 (MIT) pins an older FastAPI than ours, so it lives in its own virtual
# environment (.venv-ralph); tests/interop/conftest.py starts it with the file-system backend.
if [ ! -x "$ROOT/.venv-ralph/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$ROOT/.venv-ralph"
fi
if ! "$ROOT/.venv-ralph/bin/python" -c "import ralph, requests, uvicorn" >/dev/null 2>&1; then
  echo "==> installing Ralph (xAPI LRS for the tests) into .venv-ralph"
  "$ROOT/.venv-ralph/bin/python" -m pip install -q "ralph-malph[cli,lrs]==5.1.0" "requests"
fi
export LEARNLOOP_TEST_RALPH="$ROOT/.venv-ralph"
