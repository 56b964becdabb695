#!/usr/bin/env bash
# Set up and start Learnloop with embedded defaults: SQLite, the ai_era pack, demo data.
LEARNLOOP_EXTRAS="${LEARNLOOP_EXTRAS:-llm}" source "$(dirname "$0")/_setup.sh"
source "$(dirname "$0")/_sandbox.sh"
exec learnloop serve --demo "$@"
