#!/usr/bin/env bash
# Every style and type check, in one command: rustfmt, the Rust tests' feature
# set against the wheel's (scripts/check-features.sh), clippy, ruff, mypy --strict,
# and stubtest (the .pyi against the built extension). Expects the package
# installed in the active Python environment (scripts/test.sh does that).
set -euo pipefail
cd "$(dirname "$0")/.."
# clippy checks in the wheel's build environment, so it reuses the wheel's
# build-script outputs (librdkafka, OpenSSL) instead of compiling them again.
# shellcheck source=scripts/zig-env.sh
. scripts/zig-env.sh
# The interpreter settings maturin gave pyo3 for the wheel (abi3, 3.11): the
# same here, or pyo3's build script would run again on every switch.
pyo3_config="$CARGO_TARGET_DIR/maturin/pyo3-config-$CARGO_BUILD_TARGET-3.11-abi3.txt"
if [ -f "$pyo3_config" ]; then
  export PYO3_CONFIG_FILE="$pyo3_config"
fi
cargo fmt --check
scripts/check-features.sh
cargo clippy --release --locked --all-targets --features python -- -D warnings
ruff check python tests bench
ruff format --check python tests bench
mypy
python -m mypy.stubtest kafkalake._kafkalake
