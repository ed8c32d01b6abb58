#!/usr/bin/env bash
# Rebuilds every WebAssembly test fixture from the sources kept beside it.
# Idempotent: each section rebuilds its outputs from scratch. The built .wasm
# files are committed, so tests need only Node; this script needs the Debian
# toolchain (clang lld wasi-libc libclang-rt-dev-wasm32, wabt, binaryen).
set -euo pipefail
cd "$(dirname "$0")/.."

# wasi_cc OUT.wasm SRC.c [FLAGS...]: C -> wasm32-wasi with the name section kept.
# clang runs wasm-opt after linking whenever it is given -O and binaryen is
# installed, and wasm-opt drops the name section that trap backtraces need; so
# compile with the flags, then link without any -O.
wasi_cc() {
  local out=$1 src=$2 obj
  shift 2
  obj=$(mktemp --suffix=.o)
  clang --target=wasm32-wasi -c "$@" -o "$obj" "$src"
  local link=()
  for f in "$@"; do case "$f" in -O*|-W[!l]*|-g*) ;; *) link+=("$f") ;; esac; done
  clang --target=wasm32-wasi "${link[@]}" -Wl,--strip-debug -o "$out" "$obj"
  rm -f "$obj"
}

# --- conformance: one C program per WASI behaviour (test/fixtures/conformance/*.c) ---
# -g0 with the name section kept (no --strip-all), so traps name their functions.
for src in test/fixtures/conformance/*.c; do
  wasi_cc "${src%.c}.wasm" "$src" -O1 -g0 -Wall
done

# --- c-sandbox: programs for limits, snapshots and compute kernels (test/fixtures/c-sandbox) ---
# Commands (hello, memhog, output, fds, sha256, primes-command) get _start;
# *-reactor.c are reactors (-mexec-model=reactor: _initialize, no _start).
# Memory max is left to the sandbox, which rewrites it (--max-memory).
for src in test/fixtures/c-sandbox/*.c; do
  case "$src" in
    *-reactor.c) model=(-mexec-model=reactor) ;;
    *) model=() ;;
  esac
  wasi_cc "${src%.c}.wasm" "$src" -O2 -g0 -Wall "${model[@]}"
done
for src in test/fixtures/c-sandbox/*.wat; do
  wat2wasm --debug-names -o "${src%.wat}.wasm" "$src"
done

# --- wat: modules for the wasm layer's reader, rewrites and backtraces (test/fixtures/wat) ---
# --debug-names keeps a name section (backtraces use it); nonames.wat is the
# module built without one, to test the func[N] fallback.
for src in test/fixtures/wat/*.wat; do
  case "$src" in
    */nonames.wat) names=() ;;
    *) names=(--debug-names) ;;
  esac
  wat2wasm --enable-threads --enable-tail-call --enable-exceptions "${names[@]}" -o "${src%.wat}.wasm" "$src"
done

# --- image: modules for manifests, builds and end-to-end image tests (test/fixtures/image) ---
wasi_cc test/fixtures/image/greet.wasm test/fixtures/image/greet.c -O2 -g0 -Wall
for src in test/fixtures/image/*.wat; do
  wat2wasm --debug-names -o "${src%.wat}.wasm" "$src"
done

# --- bench: guests for `npm run bench` (bench/guests) ---
# C at -O2 like a real program; WAT with names. See bench/README.md.
for src in bench/guests/*.c; do
  wasi_cc "${src%.c}.wasm" "$src" -O2 -g0 -Wall
done
for src in bench/guests/*.wat; do
  wat2wasm --debug-names -o "${src%.wat}.wasm" "$src"
done

# --- linker: modules for link-time checks and hostile pointers (test/fixtures/linker) ---
for src in test/fixtures/linker/*.wat; do
  wat2wasm --debug-names -o "${src%.wat}.wasm" "$src"
done

# --- node: HTTP handlers for the gateway (test/fixtures/wagi, test/fixtures/reactor) ---
# WAGI handlers are ordinary WASI commands; reactors are built with
# -mexec-model=reactor (exports _initialize, no _start). The AssemblyScript
# reactor uses asc from npm (devDependency) with no WASI shim.
for src in test/fixtures/wagi/*.c; do
  case "$src" in */files.c) continue ;; esac
  clang --target=wasm32-wasi -O2 -g0 -Wall -Wl,--strip-debug -o "${src%.c}.wasm" "$src"
done
# files.c: an image's bundled files, writable dir and clock grant on a node (test/server/image-capabilities.test.ts)
wasi_cc test/fixtures/wagi/files.wasm test/fixtures/wagi/files.c -O2 -g0 -Wall
for src in test/fixtures/reactor/*.c; do
  clang --target=wasm32-wasi -mexec-model=reactor -O2 -g0 -Wall -Wl,--strip-debug -o "${src%.c}.wasm" "$src"
done
npx --no-install asc test/fixtures/reactor/hello.ts -o test/fixtures/reactor/hello-as.wasm -O3 --runtime incremental --use abort= --exportStart _initialize
clang --target=wasm32-wasi -O2 -g0 -Wall -Wl,--strip-debug -o examples/hello-image/hello.wasm examples/hello-image/hello.c

# --- sockets: guests for test/kernel/sockets.test.ts (test/fixtures/sockets) ---
# They need a preopened listener (KernelOptions.listeners / --tcplisten), so
# they live apart from the conformance programs, which run without one.
for src in test/fixtures/sockets/*.c; do
  wasi_cc "${src%.c}.wasm" "$src" -O1 -g0 -Wall
done

# --- volume: much stdout / large env ports (test/kernel/stdio-env-volume.test.ts) ---
for src in test/fixtures/volume/*.c; do
  wasi_cc "${src%.c}.wasm" "$src" -O2 -g0 -Wall
done

# --- wat-kernel: hand-written guests for kernel edge cases (test/kernel/wat-guests.test.ts) ---
for src in test/fixtures/wat-kernel/*.wat; do
  wat2wasm --debug-names -o "${src%.wat}.wasm" "$src"
done

# --- as: AssemblyScript WASI commands (test/kernel/assemblyscript.test.ts) ---
# asc from npm (devDependency) with @assemblyscript/wasi-shim's configuration,
# which maps console/process/crypto/Date onto wasi_snapshot_preview1.
for src in test/fixtures/as/*.ts; do
  npx --no-install asc "$src" -o "${src%.ts}.wasm" --config node_modules/@assemblyscript/wasi-shim/asconfig.json -O2
done

# --- ext: guests of host extensions (test/fixtures/ext; the seed also as examples/seed-plugin) ---
# C guests use the headers in guest/c (the extensions' C binding); AS guests the binding in guest/as.
for src in test/fixtures/ext/*.wat examples/seed-plugin/*.wat; do
  wat2wasm --debug-names -o "${src%.wat}.wasm" "$src"
done
for src in test/fixtures/ext/*.c; do
  wasi_cc "${src%.c}.wasm" "$src" -O2 -g0 -Wall
done
for src in test/fixtures/ext/*.ts; do
  npx --no-install asc "$src" -o "${src%.ts}.wasm" --config node_modules/@assemblyscript/wasi-shim/asconfig.json -O2
done

# --- dwarf: a freestanding command with a DWARF line table, as DWARF 4 and 5 (test/wasm/dwarf.test.ts) ---
for v in 4 5; do
  clang --target=wasm32 -nostdlib -O1 -g -gdwarf-$v -c -o /tmp/uniwasm-trap.o test/fixtures/dwarf/trap.c
  (cd test/fixtures/dwarf && clang --target=wasm32 -nostdlib -Wl,--entry=_start -o trap-dwarf$v.wasm /tmp/uniwasm-trap.o)
  rm -f /tmp/uniwasm-trap.o
done

# --- scenario examples (examples/*/…/*.c): their own build script ---
bash examples/build.sh

# --- examples: hello.wasm for the README's first command, hello-http.wasm (WAGI) for its node block, div.wasm for its trap ---
wasi_cc examples/hello.wasm examples/hello.c -O2 -g0 -Wall
wasi_cc examples/hello-http.wasm examples/hello-http.c -O2 -g0 -Wall
wasi_cc examples/div.wasm examples/div.c -O2 -g0 -Wall

# --- hostile: guests that try to make the host work or allocate past their limits
# (test/kernel/hostile.test.ts, test/sandbox/hostile.test.ts, bench/sandbox-hostile.bench.ts) ---
for src in test/fixtures/hostile/*.c; do
  wasi_cc "${src%.c}.wasm" "$src" -O2 -g0 -Wall
done
for src in test/fixtures/hostile/*.wat; do
  wat2wasm --debug-names -o "${src%.wat}.wasm" "$src"
done

# --- node-wasi: a command and a reactor for the node:wasi drop-in (test/kernel/node-wasi.test.ts) ---
wasi_cc test/fixtures/node-wasi/command.wasm test/fixtures/node-wasi/command.c -O2 -g0 -Wall
wasi_cc test/fixtures/node-wasi/reactor.wasm test/fixtures/node-wasi/reactor.c -O2 -g0 -Wall -mexec-model=reactor
