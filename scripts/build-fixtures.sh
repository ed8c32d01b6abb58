#!/usr/bin/env bash
# Rebuilds every WebAssembly test fixture from the sources kept beside it.
# Idempotent: each section rebuilds its outputs from scratch. The built .wasm
# files are committed, so tests need only Node; this script needs the Debian
# toolchain (clang lld wasi-libc libclang-rt-dev-wasm32, wabt, binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."

# --- conformance: one C program per WASI behaviour (test/fixtures/conformance/*.c) ---
# -g0 with the name section kept (no --strip-all), so traps name their functions.
for src in test/fixtures/conformance/*.c; do
  clang --target=wasm32-wasi -O1 -g0 -Wall -Wl,--strip-debug -o "${src%.c}.wasm" "$src"
done
