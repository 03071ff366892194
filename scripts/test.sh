#!/usr/bin/env bash
# Install every test dependency (the tansu Kafka broker, Azurite, stunnel,
# Python test packages), build kafkalake's release wheel and install it, then
# run the lint, the Rust tests and the whole Python test suite.
# This is what CI runs (.ci/run). Safe to re-run: builds are cached in
# ~/.cache/kafkalake (override with KAFKALAKE_CACHE).
#
# The suite tests the wheel users install, and the wheel, clippy and the Rust
# tests share one compiled dependency tree (scripts/zig-env.sh): from an
# empty cache the whole run takes about an hour on 2 cores, most of it the
# one release build; with the cache warm, about 20 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export KAFKALAKE_CACHE="${KAFKALAKE_CACHE:-$HOME/.cache/kafkalake}"
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
# A cold tansu build runs beside the wheel's build: each leaves one of the
# two cores idle for long stretches (a single large crate, a link).
tansu_log="$(mktemp)"
scripts/install-tansu.sh >"$tansu_log.out" 2>"$tansu_log" &
tansu_pid=$!
trap 'kill "$tansu_pid" 2>/dev/null || true' EXIT

step "Azure Storage emulator: Azurite from npm (installed once, then cached)"
KAFKALAKE_AZURITE="$(scripts/install-azurite.sh)"
export KAFKALAKE_AZURITE
"$KAFKALAKE_AZURITE" --version

step "release wheel: manylinux_2_28, abi3 (cached per source tree)"
rm -f dist/kafkalake-*.whl
scripts/build-wheels.sh dist
wheel="$(ls dist/kafkalake-*.whl)"

step "Kafka broker: waiting for tansu"
if ! wait "$tansu_pid"; then
  cat "$tansu_log" >&2
  echo "building tansu failed (its output is above)" >&2
  exit 1
fi
trap - EXIT
KAFKALAKE_TANSU="$(cat "$tansu_log.out")"
export KAFKALAKE_TANSU
rm -f "$tansu_log" "$tansu_log.out"
"$KAFKALAKE_TANSU" --version

step "Python environment (.venv): the wheel and the test packages"
[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip install -q --upgrade pip
# The suite imports the wheel users get, not a second build of the tree
# (tests/test_wheel.py also installs it into an environment without Rust).
pip uninstall -q -y kafkalake 2>/dev/null || true
pip install -q "$wheel[test,lint,bench]"

step "lint: rustfmt, clippy, ruff, mypy, stubtest"
scripts/lint.sh

step "Rust tests (the wheel's compiled dependencies)"
# shellcheck source=scripts/zig-env.sh
(. scripts/zig-env.sh && cargo test --release --locked)

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
