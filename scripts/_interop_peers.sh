# Sourced by test.sh after _setup.sh: independent implementations the standards tests check
# Learnloop's output against, in their own virtual environment (.venv-interop), never in the
# product's install:
# - openbadgeslib 4.6.3 (LGPL-3.0) with its [ldp] extra: verifies Open Badges 3.0 credentials
#   with eddsa-rdfc-2022 Data Integrity proofs and their Bitstring Status List
#   (tests/interop/obcheck.py runs in this environment);
# - citolab-qti-convert 0.2.0 (GPL-3.0-only): Citolab's QTI 3.0 <-> 2.1 converter, for the
#   3.0 -> 2.1 -> 3.0 round trip of our QTI packages (tests/interop/qticonvert.py).
# Both run as separate processes; nothing of theirs is imported by Learnloop.
if [ ! -x "$ROOT/.venv-interop/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$ROOT/.venv-interop"
fi
if ! "$ROOT/.venv-interop/bin/python" -c "import openbadgeslib.ob3.ldp, pyld, qti_convert" >/dev/null 2>&1; then
  echo "==> installing openbadgeslib and citolab-qti-convert (test-only peers) into .venv-interop"
  "$ROOT/.venv-interop/bin/python" -m pip install -q "openbadgeslib[ldp]==4.6.3" "citolab-qti-convert==0.2.0"
fi
export LEARNLOOP_TEST_INTEROP_PEERS="$ROOT/.venv-interop"
