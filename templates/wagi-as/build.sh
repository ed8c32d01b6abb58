#!/bin/sh
# Builds app.wasm from app.ts with AssemblyScript and its WASI shim, both from
# npm: run `npm install` here once (Node >= 20; no Debian package needed).
# asc keeps the name section, so a trap's backtrace names the functions.
set -eu
cd "$(dirname "$0")"
[ -x node_modules/.bin/asc ] || { echo "build.sh: AssemblyScript is not installed here; run: npm install" >&2; exit 127; }
node_modules/.bin/asc app.ts -o app.wasm --config node_modules/@assemblyscript/wasi-shim/asconfig.json -O2 --debug
