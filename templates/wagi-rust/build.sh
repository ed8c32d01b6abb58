#!/bin/sh
# Builds app.wasm from src/main.rs with Debian's Rust toolchain (no cargo, no crates):
#   apt-get install rustc libstd-rust-dev-wasm32 lld
# The target is wasm32-wasip1, which Rust before 1.78 (Debian bookworm's 1.63) calls wasm32-wasi.
# -g keeps DWARF, so a trap's backtrace shows file:line.
set -eu
cd "$(dirname "$0")"
RUSTC=${RUSTC:-rustc}
need="apt-get install rustc libstd-rust-dev-wasm32 lld"
command -v "$RUSTC" >/dev/null 2>&1 || { echo "build.sh: $RUSTC not found; install Debian's toolchain: $need" >&2; exit 127; }
lib="$("$RUSTC" --print sysroot)/lib/rustlib"
if [ -d "$lib/wasm32-wasip1" ]; then target=wasm32-wasip1
elif [ -d "$lib/wasm32-wasi" ]; then target=wasm32-wasi
else echo "build.sh: $RUSTC has no standard library for wasm32-wasip1 (or wasm32-wasi); install it: $need (or: rustup target add wasm32-wasip1)" >&2; exit 1
fi
"$RUSTC" --edition 2021 --target "$target" -C opt-level=2 -g -o app.wasm src/main.rs
