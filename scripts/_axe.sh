# axe-core (MPL-2.0) for the accessibility tests, from the npm registry into a cache outside the
# repository (nothing is vendored). Sourced by scripts/test.sh; exports LEARNLOOP_AXE_JS.
AXE_VERSION="4.14.1"
AXE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/learnloop/axe-core-$AXE_VERSION"
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
  command -v npm >/dev/null 2>&1 || { echo "npm is needed to install axe-core (apt-get install npm)" >&2; exit 2; }
  echo "Installing axe-core $AXE_VERSION from npm into $AXE_DIR"
  mkdir -p "$AXE_DIR"
  npm install --silent --no-audit --no-fund --prefix "$AXE_DIR" "axe-core@$AXE_VERSION" >/dev/null
fi
export LEARNLOOP_AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"
