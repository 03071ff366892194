# shellcheck shell=bash
# Sourced by build-wheels.sh, lint.sh and test.sh: one build environment for
# the release wheel, clippy and the Rust tests, so the dependency tree
# (DataFusion, deltalake, arrow, librdkafka, OpenSSL) is compiled once and
# shared by all three instead of once per tool.
#
# C code and links go through zig against glibc 2.28 (maturin's `zig`
# wrappers), so the wheel asks for no newer glibc than manylinux_2_28 says,
# and the test binaries are linked the same way. The wrappers live at a fixed
# path in the cache: their paths are part of every C crate's build
# fingerprint, and a path that moved would rebuild the tree.
#
# Sets: KAFKALAKE_CACHE, KAFKALAKE_WHEEL_TOOLS (maturin, zig, auditwheel),
# CARGO_TARGET_DIR, CARGO_BUILD_TARGET and the target's CC/CXX/AR/RANLIB and
# linker.

KAFKALAKE_CACHE="${KAFKALAKE_CACHE:-$HOME/.cache/kafkalake}"
KAFKALAKE_WHEEL_TOOLS="$KAFKALAKE_CACHE/wheel-tools"
export KAFKALAKE_CACHE KAFKALAKE_WHEEL_TOOLS

if [ ! -x "$KAFKALAKE_WHEEL_TOOLS/bin/maturin" ] ||
  [ ! -x "$KAFKALAKE_WHEEL_TOOLS/bin/auditwheel" ] ||
  ! "$KAFKALAKE_WHEEL_TOOLS/bin/python" -c "import ziglang" 2>/dev/null; then
  echo "installing the build tools into $KAFKALAKE_WHEEL_TOOLS (maturin, zig, auditwheel)" >&2
  python3 -m venv "$KAFKALAKE_WHEEL_TOOLS"
  # zig 0.13: later releases turn on sanitizers whose runtime maturin's zig
  # linking does not provide.
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$KAFKALAKE_WHEEL_TOOLS/bin/pip" install -q \
    "maturin>=1.9,<2" "ziglang==0.13.0.post1" "auditwheel>=6"
fi

_zig_dir="$KAFKALAKE_CACHE/zig-x86_64-linux-gnu.2.28"
mkdir -p "$_zig_dir"
for _tool in cc c++ ar ranlib; do
  case "$_tool" in
    cc | c++) _args="-- -g -fno-sanitize=all -target x86_64-linux-gnu.2.28" ;;
    *) _args="--" ;;
  esac
  _body="#!/bin/sh
# zig $_tool for x86_64 Linux, glibc 2.28 (written by scripts/zig-env.sh)
export CARGO_ZIGBUILD_ZIG_COMMAND='$KAFKALAKE_WHEEL_TOOLS/bin/python3'
export CARGO_ZIGBUILD_ZIG_COMMAND_ARGS='-m ziglang'
exec '$KAFKALAKE_WHEEL_TOOLS/bin/maturin' zig $_tool $_args \"\$@\""
  # Rewritten only when it changes, so its timestamp stays put.
  if [ "$(cat "$_zig_dir/$_tool" 2>/dev/null)" != "$_body" ]; then
    printf '%s\n' "$_body" >"$_zig_dir/$_tool"
    chmod +x "$_zig_dir/$_tool"
  fi
done

export CARGO_TARGET_DIR="$KAFKALAKE_CACHE/target-zig"
export CARGO_BUILD_TARGET=x86_64-unknown-linux-gnu
export CC_x86_64_unknown_linux_gnu="$_zig_dir/cc"
export CXX_x86_64_unknown_linux_gnu="$_zig_dir/c++"
export AR_x86_64_unknown_linux_gnu="$_zig_dir/ar"
export RANLIB_x86_64_unknown_linux_gnu="$_zig_dir/ranlib"
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER="$_zig_dir/cc"
unset _zig_dir _tool _args _body
