#!/usr/bin/env bash
# Rebuilds the scenario examples' guests (examples/*/**/*.c) next to their
# sources. The built .wasm files are committed, so the demos and their tests
# need only Node; this needs Debian's clang, lld, wasi-libc and
# libclang-rt-dev-wasm32. scripts/build-fixtures.sh runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."

# C -> wasm32-wasi: compile with -O2, link without -O (given -O, clang runs
# wasm-opt after linking, which drops the name section trap backtraces use).
# -I guest/c: the extensions' C headers; -I examples/common: wagi.h.
# A guest whose uniwasm.toml says entry = "reactor" is built as a reactor
# (_initialize and exports, no _start).
guest() {
  local src=$1 obj
  shift
  local model=()
  grep -q '^entry = "reactor"' "$(dirname "$src")/uniwasm.toml" 2>/dev/null && model=(-mexec-model=reactor)
  obj=$(mktemp --suffix=.o)
  clang --target=wasm32-wasi -O2 -g0 -Wall -Werror -I guest/c -I examples/common "$@" -c -o "$obj" "$src"
  clang --target=wasm32-wasi "${model[@]}" "$@" -Wl,--strip-debug -o "${src%.c}.wasm" "$obj"
  rm -f "$obj"
  chmod -x "${src%.c}.wasm"
}

for src in examples/secure-microservices/*/*.c; do guest "$src"; done
for src in examples/edge-node/*/*.c; do [ -e "$src" ] && guest "$src"; done
for src in examples/multi-tenant-saas/*/*.c; do [ -e "$src" ] && guest "$src"; done
exit 0
