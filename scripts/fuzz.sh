#!/usr/bin/env bash
# Long fuzz run: mutated fixture modules and random host calls (test/fuzz/).
#   scripts/fuzz.sh [SECONDS] [FIRST_SEED]
# Every failure is printed with its seed; re-running from that seed reproduces it.
# Exit status 1 when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
seed="${2:-$(( $(date +%s) % 1000000000 ))}"
npx tsc -p tsconfig.json
exec node dist/test/fuzz/long.js --seconds "$seconds" --seed "$seed"
