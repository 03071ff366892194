#!/usr/bin/env bash
# Every style and type check, in one command: rustfmt, the Rust tests' feature
# set against the wheel's (scripts/check-features.sh), clippy, ruff, mypy --strict,
# and stubtest (the .pyi against the built extension). Expects the package
# installed in the active Python environment (scripts/test.sh does that).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kafkalake/target}"
cargo fmt --check
scripts/check-features.sh
cargo clippy --release --locked --all-targets --features python -- -D warnings
ruff check python tests bench
ruff format --check python tests bench
mypy
python -m mypy.stubtest kafkalake._kafkalake
