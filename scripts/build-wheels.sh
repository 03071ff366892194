#!/usr/bin/env bash
# Build kafkalake's release wheel into dist/ (or the folder given): one wheel
# for CPython 3.11 and newer (abi3), manylinux_2_28 x86_64, which installs
# without a Rust toolchain on Databricks Runtime 15.4 LTS and newer and on
# any x86_64 Linux with glibc 2.28 or newer.
#
# The engine's C code and its link go through zig against glibc 2.28 rather
# than this machine's newer one (scripts/zig-env.sh), so the wheel does not
# ask for more than it says; `auditwheel show` then checks the platform tag
# the wheel carries. clippy and the Rust tests build in the same environment
# and target directory, so the three share one compiled dependency tree.
#
# Cached in ~/.cache/kafkalake (KAFKALAKE_CACHE): the build tools, that
# target directory (a cold build takes about 35 minutes on 2 cores, a warm
# one a few), and each wheel under a hash of the sources it is built from,
# so an unchanged tree costs nothing.
#
# aarch64: not built here. It needs Rust's standard library for that target
# (`rustup target add aarch64-unknown-linux-gnu`), which comes from the Rust
# project's download server, not from a package registry.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/zig-env.sh
. scripts/zig-env.sh
CACHE="$KAFKALAKE_CACHE"
OUT="${1:-dist}"
TOOLS="$KAFKALAKE_WHEEL_TOOLS"
PLATFORM=manylinux_2_28
TRIPLE=x86_64-unknown-linux-gnu
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Everything that goes into the wheel, and how it is built.
source_key() {
  {
    find src python -type f ! -path '*/__pycache__/*' ! -name '*.so' -print0 | sort -z |
      xargs -0 sha256sum
    sha256sum Cargo.toml Cargo.lock pyproject.toml README.md scripts/build-wheels.sh \
      scripts/zig-env.sh
    rustc --version
  } | sha256sum | cut -c1-16
}
key=$(source_key)
cached="$CACHE/wheels/$key"
mkdir -p "$OUT"
if compgen -G "$cached/*.whl" >/dev/null; then
  cp "$cached"/*.whl "$OUT"/
  echo "wheel unchanged since its last build ($key): $(cd "$cached" && ls ./*.whl)" >&2
  exit 0
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
echo "building the $PLATFORM wheel (cold: about 35 minutes on 2 cores; warm: a few)" >&2
"$TOOLS/bin/maturin" build --release --compatibility "$PLATFORM" --target "$TRIPLE" \
  --out "$build" >&2

for wheel in "$build"/*.whl; do
  shown=$("$TOOLS/bin/auditwheel" show "$wheel")
  echo "$shown" >&2
  tag=$(grep -o 'platform tag: "[a-z0-9_]*"' <<<"$shown" | head -1 | cut -d'"' -f2)
  case "$tag" in
    manylinux_2_2[0-8]_x86_64 | manylinux_2_1[0-9]_x86_64 | manylinux_2_[5-9]_x86_64) ;;
    *)
      echo "auditwheel: $(basename "$wheel") is not manylinux_2_28 x86_64 or older (got '${tag:-none}')" >&2
      exit 1
      ;;
  esac
  case "$(basename "$wheel")" in
    *-cp311-abi3-"$PLATFORM"_x86_64.whl) ;;
    *)
      echo "unexpected wheel name $(basename "$wheel"): want cp311-abi3 $PLATFORM" >&2
      exit 1
      ;;
  esac
done

# Cached only if the sources did not change while it was being built.
if [ "$(source_key)" = "$key" ]; then
  mkdir -p "$cached"
  cp "$build"/*.whl "$cached"/
else
  echo "the sources changed during the build: the wheel is not cached" >&2
fi
cp "$build"/*.whl "$OUT"/
ls "$OUT"/*.whl
