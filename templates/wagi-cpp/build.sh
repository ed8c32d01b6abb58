#!/bin/sh
# Builds app.wasm from app.cpp with Debian's WebAssembly C++ toolchain (libc++ for WASI):
#   apt-get install clang lld wasi-libc libclang-rt-dev-wasm32 libc++-dev-wasm32
# -fno-exceptions: WebAssembly exceptions are not enabled for wasm32-wasi here.
# -g keeps DWARF, so a trap's backtrace shows file:line. Compile and link are
# two steps: given -O, clang runs wasm-opt after linking, which drops the name
# section that backtraces take function names from.
set -eu
cd "$(dirname "$0")"
CXX=${CXX:-clang++}
need="apt-get install clang lld wasi-libc libclang-rt-dev-wasm32 libc++-dev-wasm32"
command -v "$CXX" >/dev/null 2>&1 || { echo "build.sh: $CXX not found; install Debian's toolchain: $need" >&2; exit 127; }
"$CXX" --target=wasm32-wasi -O2 -g -Wall -fno-exceptions -c -o app.o app.cpp || { echo "build.sh: compiling failed (missing headers? $need)" >&2; exit 1; }
"$CXX" --target=wasm32-wasi -fno-exceptions -o app.wasm app.o || { echo "build.sh: linking failed (missing libc++ or builtins? $need)" >&2; exit 1; }
rm -f app.o
