# Sourced by the examples' demo.sh scripts: a throw-away node on 127.0.0.1 (free ports, a temp
# directory, stopped at the end) and the helpers each demo prints its commands with.
# After `start_node [serve flags...]`: $api, $gw and $port are set and the CLI acts as the node's admin.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
unset UNIWASM_TOKEN UNIWASM_NODE   # a demo talks to its own node only
export UNIWASM_CONFIG="$work/config.json" UNIWASM_HOME="$work/home"
uniwasm() { node "$repo/bin/uniwasm.js" "$@"; }
say() { printf '\n== %s\n' "$*"; }
# show ARGS...: prints a command as typed (arguments with spaces quoted).
show() { local a out='$'; for a in "$@"; do [[ $a == *[[:space:]]* ]] && a="'$a'"; out+=" $a"; done; echo "$out"; }

# Background processes stopped at exit: the node, and whatever a demo adds with `stop_at_exit PID`.
stop_pids=()
stop_at_exit() { stop_pids+=("$@"); }
cleanup() {
  if [ ${#stop_pids[@]} -gt 0 ]; then
    kill -TERM "${stop_pids[@]}" 2>/dev/null || true
    wait "${stop_pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# start_node [serve flags...]: starts the node, waits until it is ready, points the CLI at it.
start_node() {
  node "$repo/bin/uniwasm.js" serve --data "$work/node" --port 0 --gateway-port 0 --log-level warn "$@" >"$work/serve.out" 2>"$work/serve.err" &
  node_pid=$!
  stop_at_exit "$node_pid"
  for _ in $(seq 300); do grep -q "Point the CLI" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
  api=$(sed -n 's/^  API *\(http:[^ ]*\).*/\1/p' "$work/serve.out")
  gw=$(sed -n 's/^  gateway *\(http:[^ ]*\).*/\1/p' "$work/serve.out")
  port=${gw##*:}
  if [ -z "$api" ]; then
    echo "the node did not start:" >&2
    cat "$work/serve.err" >&2
    exit 1
  fi
  uniwasm node-config --node "$api" --token-file "$work/node/bootstrap-token" >/dev/null
}
