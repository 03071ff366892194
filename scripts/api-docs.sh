#!/usr/bin/env bash
# Build kafkalake's API reference (HTML) from its docstrings and type stubs:
#
#   scripts/api-docs.sh [OUT_DIR]      (default: build/api; open OUT_DIR/index.html)
#
# Needs kafkalake installed (pip install .) and pdoc (pip install ".[test]").
# Signatures come from the code itself, so the reference cannot drift from it.
set -euo pipefail
out="${1:-build/api}"
python -m pdoc kafkalake --docformat google --no-show-source -o "$out"
echo "API reference: $out/index.html"
