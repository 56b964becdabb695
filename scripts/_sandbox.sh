# Sourced by serve.sh and test.sh after _setup.sh: the code sandbox that runs learners' code.
# Debian's bubblewrap isolates each submission; the operating system's Python runs it, with
# Debian's NumPy and pandas. As root, `learnloop sandbox setup` creates the unprivileged user
# submissions run as. Without these, code items are turned off (and the tests fail in CI).
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
sandbox_need=()
command -v bwrap >/dev/null 2>&1 || sandbox_need+=(bubblewrap)
/usr/bin/python3 -c "import numpy, pandas" >/dev/null 2>&1 || sandbox_need+=(python3 python3-numpy python3-pandas)
if [ ${#sandbox_need[@]} -gt 0 ]; then
  echo "==> installing the code sandbox: ${sandbox_need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${sandbox_need[@]}" >/dev/null
fi
echo "==> checking the code sandbox"
$SUDO "$ROOT/.venv/bin/learnloop" sandbox setup || echo "warning: code items are off (see docs/operations.md)"
