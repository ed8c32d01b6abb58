#!/bin/sh
# Builds plugin.wasm from plugin.c with Debian's WebAssembly C toolchain:
#   apt-get install clang lld wasi-libc libclang-rt-dev-wasm32
# -mexec-model=reactor (when linking): exports _initialize instead of _start (a warm instance).
# -g keeps DWARF, so a trap's backtrace shows file:line. Compile and link are
# two steps: given -O, clang runs wasm-opt after linking, which drops the name
# section that backtraces take function names from.
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang}
need="apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
command -v "$CC" >/dev/null 2>&1 || { echo "build.sh: $CC not found; install Debian's toolchain: $need" >&2; exit 127; }
"$CC" --target=wasm32-wasi -O2 -g -Wall -c -o plugin.o plugin.c || { echo "build.sh: compiling failed (missing headers? $need)" >&2; exit 1; }
"$CC" --target=wasm32-wasi -mexec-model=reactor -o plugin.wasm plugin.o || { echo "build.sh: linking failed (missing libc or builtins? $need)" >&2; exit 1; }
rm -f plugin.o
