#!/usr/bin/env bash
# Peer knowledge-tracing libraries for bench/kt.py, each in its own virtual environment.
#
#   bash bench/kt_peers.sh setup                      build .venv-kt-peers (pyBKT 1.4.3)
#   bash bench/kt_peers.sh version                    print the pyBKT version, or nothing
#   bash bench/kt_peers.sh pybkt TRAIN TEST OUT [FITS] fit pyBKT on TRAIN, predict TEST
#
# pyBKT 1.4.3's C++ E-step (Eigen + OpenMP) only builds against numpy 1.x, and its metric
# table breaks on scikit-learn >= 1.4 at import; without the C++ build it silently falls
# back to a pure-Python fit that is ~50x slower. So the venv pins numpy 1.26.4,
# pandas 2.1.4 and scikit-learn 1.3.2 and builds pyBKT from source without isolation.
# TRAIN/TEST are CSVs with columns order_id,user_id,skill_name,correct; OUT gets one
# prediction per TEST row (in TEST's row order) and a JSON line with the fit time.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$HERE/.venv-kt-peers"
PY="$VENV/bin/python"

case "${1:-}" in
  setup)
    if [ -x "$PY" ] && "$PY" -c "import pyBKT.fit.E_step" 2>/dev/null; then exit 0; fi
    python3 -m venv "$VENV"
    "$PY" -m pip install -q "numpy==1.26.4" "pandas==2.1.4" "scikit-learn==1.3.2" "setuptools<70" wheel requests
    "$PY" -m pip install -q --no-build-isolation --no-deps --no-binary pyBKT "pyBKT==1.4.3"
    "$PY" -c "import pyBKT.fit.E_step" || { echo "pyBKT C++ extension did not build" >&2; exit 1; }
    ;;
  version)
    [ -x "$PY" ] && "$PY" -c "import importlib.metadata as m; print(m.version('pyBKT'))" 2>/dev/null || true
    ;;
  pybkt)
    "$PY" - "$2" "$3" "$4" "${5:-5}" <<'PYEOF'
import json, sys, time
import numpy as np
import pandas as pd
from pyBKT.models import Model

train_path, test_path, out_path, fits = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
dtypes = {"order_id": np.int64, "user_id": str, "skill_name": str, "correct": np.int64}
train = pd.read_csv(train_path, dtype=dtypes)
test = pd.read_csv(test_path, dtype=dtypes)
model = Model(seed=0, num_fits=fits)
t0 = time.perf_counter()
model.fit(data=train)
fit_seconds = time.perf_counter() - t0
t0 = time.perf_counter()
# Skills absent from training cannot be predicted by pyBKT: score only known skills and
# give the others the training mean (the count is reported).
known = test["skill_name"].isin(set(train["skill_name"]))
pred = np.full(len(test), float(train["correct"].mean()))
if known.any():
    out = model.predict(data=test[known].copy())
    pred[np.flatnonzero(known.to_numpy())] = out.sort_values("order_id")["correct_predictions"].to_numpy()
predict_seconds = time.perf_counter() - t0
np.savetxt(out_path, pred)
print(json.dumps({"fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                  "unknown_skill_rows": int((~known).sum())}))
PYEOF
    ;;
  *)
    sed -n '2,8p' "$0"; exit 2 ;;
esac
