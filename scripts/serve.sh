#!/usr/bin/env bash
# Set up and start Learnloop with embedded defaults: SQLite, the ai_era pack, demo data.
# Each step says what it does and how long it took. The first start installs the Python packages
# (about 1.3 GB, mostly PyTorch for CPU) and the code sandbox's Debian packages, then creates the
# database, loads the pack and the demo organisation: a few minutes. Later starts take seconds.
# The address is printed once the server is listening.
export LEARNLOOP_STEPS=5
LEARNLOOP_EXTRAS="${LEARNLOOP_EXTRAS:-llm}" source "$(dirname "$0")/_setup.sh"
step "Code sandbox for code items (bubblewrap; Debian's Python with NumPy and pandas)" \
  source "$(dirname "$0")/_sandbox.sh"
step "Database and content pack (created or upgraded; the pack is loaded the first time)" learnloop init
printf '==> [5/%s] Demo organisation and web server\n' "$LEARNLOOP_STEPS"
exec learnloop serve --demo "$@"
