#!/usr/bin/env bash
# The Rust tests (`cargo test --release`) reuse the wheel's compiled
# dependencies only if both builds resolve every shared crate with the same
# features. Print any crate whose features differ and fail; fix by naming the
# crate with the Python build's features in Cargo.toml's [dependencies].
set -euo pipefail
cd "$(dirname "$0")/.."
fmt='{p}|{f}'
wheel=$(cargo tree --locked -e features,normal,build --prefix none --format "$fmt" \
  --features python,pyo3/extension-module)
tests=$(cargo tree --locked -e features,normal,build,dev --prefix none --format "$fmt")
python3 - <(printf '%s\n' "$wheel") <(printf '%s\n' "$tests") <<'PY'
import sys


def features(path):
    crates = {}
    for line in open(path):
        if "|" not in line:
            continue
        package, feats = line.rstrip("\n").split("|", 1)
        name = " ".join(package.replace(" (*)", "").split()[:2])
        found = {f.replace(" (*)", "").strip() for f in feats.split(",") if f.strip()}
        crates.setdefault(name, set()).update(found)
    return crates


wheel, tests = features(sys.argv[1]), features(sys.argv[2])
drift = [
    f"{name}: wheel only {sorted(wheel[name] - tests[name])}, "
    f"tests only {sorted(tests[name] - wheel[name])}"
    for name in sorted(set(wheel) & set(tests))
    if name.split()[0] != "kafkalake" and wheel[name] != tests[name]
]
if drift:
    print("cargo test would rebuild these crates (features differ from the wheel's):")
    print("\n".join(drift))
    sys.exit(1)
print(f"features agree on {len(set(wheel) & set(tests))} shared crates")
PY
