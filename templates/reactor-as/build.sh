#!/bin/sh
# Builds app.wasm from app.ts with AssemblyScript from npm: run `npm install`
# here once (Node >= 20; no Debian package needed). --exportStart _initialize
# makes it a reactor; --use abort= drops AssemblyScript's env.abort import.
set -eu
cd "$(dirname "$0")"
[ -x node_modules/.bin/asc ] || { echo "build.sh: AssemblyScript is not installed here; run: npm install" >&2; exit 127; }
node_modules/.bin/asc app.ts -o app.wasm -O3 --runtime incremental --use abort= --exportStart _initialize --debug
