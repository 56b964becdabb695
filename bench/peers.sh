#!/usr/bin/env bash
# Peer libraries for the benchmarks, kept out of the product's environment.
# Creates the ignored venv .venv-peers on top of the current Python's packages (numpy,
# scipy and an editable learnloop), then adds the peers. Run benches with it:
#   bash bench/peers.sh && .venv-peers/bin/python -m bench.irt
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv-peers/bin/python ]; then
  "$PY" -m venv --system-site-packages .venv-peers
fi
# versions the published results were produced with; all work with numpy 2.x
.venv-peers/bin/pip install --quiet "mirt==1.2.0" "girth==0.8.0" "catsim==0.21.0"
.venv-peers/bin/python -c "import mirt, girth, catsim; print('peers ready: mirt, girth, catsim')"
