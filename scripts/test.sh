#!/usr/bin/env bash
# Install every test dependency (the tansu Kafka broker, Azurite, stunnel,
# Python test packages), build kafkalake in release mode and its release
# wheel, then run the lint and the whole test suite.
# This is what CI runs (.ci/run). Safe to re-run: builds are cached in
# ~/.cache/kafkalake (override with KAFKALAKE_CACHE).
set -euo pipefail
cd "$(dirname "$0")/.."
export KAFKALAKE_CACHE="${KAFKALAKE_CACHE:-$HOME/.cache/kafkalake}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KAFKALAKE_CACHE/target}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
step() { printf '\n==> %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

step "system packages"
# Each tool and the Debian package that brings it; only what is missing is
# installed (npm may come from another Node.js distribution, whose nodejs
# package conflicts with Debian's npm).
missing=()
for pair in gcc:build-essential g++:build-essential make:build-essential \
            perl:perl openssl:openssl stunnel:stunnel4 npm:npm; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
python3 -c "import ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  # stunnel4: the TLS proxy of the TLS/SASL tests; npm: Azurite.
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing system packages: ${missing[*]}"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}"
fi

step "Kafka broker: tansu from crates.io (built once, then cached)"
KAFKALAKE_TANSU="$(scripts/install-tansu.sh)"
export KAFKALAKE_TANSU
"$KAFKALAKE_TANSU" --version

step "Azure Storage emulator: Azurite from npm (installed once, then cached)"
KAFKALAKE_AZURITE="$(scripts/install-azurite.sh)"
export KAFKALAKE_AZURITE
"$KAFKALAKE_AZURITE" --version

step "Python environment (.venv) and test packages"
[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q "maturin>=1.9,<2"

step "build and install kafkalake (release)"
pip install --no-build-isolation ".[test,lint,bench]"

step "release wheel: manylinux_2_28, abi3 (cached per source tree)"
# tests/test_wheel.py installs it into a fresh environment without Rust.
rm -f dist/kafkalake-*.whl
scripts/build-wheels.sh dist

step "lint: rustfmt, clippy, ruff, mypy, stubtest"
scripts/lint.sh

step "Rust tests"
cargo test --release --locked

step "Python tests (real broker, TLS/SASL, Azurite, embedded cluster, CLI)"
set +e
python -m pytest -p no:cacheprovider
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$code"
