#!/usr/bin/env bash
# Install Azurite (MIT, Microsoft's Azure Storage emulator) from the npm
# registry once and keep it in a cache directory, so CI runs and later
# sessions reuse it. Prints the path of the azurite-blob executable on stdout
# (and nothing else there); progress goes to stderr.
#
# 3.35.0 is the newest release that runs on Node.js 20 (the machine's node):
# 3.36.0 and later declare engines node >= 21/22. Override with AZURITE_VERSION.
set -euo pipefail
AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"
CACHE="${KAFKALAKE_CACHE:-$HOME/.cache/kafkalake}"
ROOT="$CACHE/azurite-$AZURITE_VERSION"
BIN="$ROOT/node_modules/.bin/azurite-blob"

if [ ! -x "$BIN" ]; then
  command -v npm >/dev/null || { echo "install-azurite.sh: npm not found (apt-get install nodejs npm)" >&2; exit 1; }
  echo "installing azurite $AZURITE_VERSION into $ROOT" >&2
  mkdir -p "$CACHE"
  # Install into a scratch directory first and move it into place, so an
  # interrupted install never leaves a half-filled cache that looks complete.
  tmp="$(mktemp -d "$CACHE/azurite-$AZURITE_VERSION.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # A package.json of its own keeps npm from walking up to a parent project.
  echo '{"name":"kafkalake-azurite","private":true}' >"$tmp/package.json"
  CI=true npm install --prefix "$tmp" --no-audit --no-fund --no-update-notifier \
    --save-exact --loglevel=error "azurite@$AZURITE_VERSION" >&2
  [ -x "$tmp/node_modules/.bin/azurite-blob" ] || {
    echo "install-azurite.sh: npm finished but $tmp/node_modules/.bin/azurite-blob is missing" >&2
    exit 1
  }
  rm -rf "$ROOT"
  mv "$tmp" "$ROOT"
  trap - EXIT
fi
echo "$BIN"
