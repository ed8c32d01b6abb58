#!/usr/bin/env bash
# An edge node in one script: start `uniwasm serve` on 127.0.0.1 with a
# throw-away data directory, create a tenant, deploy a WAGI app and a reactor
# app from the CLI, curl them, show ps/logs, then stop the node (it drains).
# Run from the repository after `npm install && npm run build`.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
export UNIWASM_CONFIG="$work/config.json"
uniwasm() { node bin/uniwasm.js "$@"; }

node bin/uniwasm.js serve --data "$work/node" --port 0 --gateway-port 0 --log-level warn >"$work/serve.out" &
node_pid=$!
trap 'kill -TERM $node_pid 2>/dev/null; wait $node_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q "Point the CLI" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
cat "$work/serve.out"
api=$(sed -n 's/^  API *\(http:[^ ]*\).*/\1/p' "$work/serve.out")
gateway=$(sed -n 's/^  gateway *\(http:[^ ]*\).*/\1/p' "$work/serve.out")

echo "+ uniwasm node-config --node $api --token-file $work/node/bootstrap-token"
uniwasm node-config --node "$api" --token-file "$work/node/bootstrap-token"
echo "+ uniwasm tenants create edge"
token=$(uniwasm tenants create edge | sed -n 's/^token (shown once): //p')
export UNIWASM_TOKEN=$token
echo "+ uniwasm deploy test/fixtures/wagi/handler.wasm --name hello --env GREETING=bonjour --route /hello"
uniwasm deploy test/fixtures/wagi/handler.wasm --name hello --env GREETING=bonjour --route /hello
echo "+ uniwasm deploy test/fixtures/reactor/hello.wasm --name fast --abi reactor --min 1"
uniwasm deploy test/fixtures/reactor/hello.wasm --name fast --abi reactor --min 1
echo "+ curl $gateway/hello/echo?lang=fr"
curl -s "$gateway/hello/echo?lang=fr"
echo "+ curl -H 'Host: fast.edge.localhost' $gateway/   (twice: the instance stays warm)"
curl -s -H 'Host: fast.edge.localhost' "$gateway/"
curl -s -H 'Host: fast.edge.localhost' "$gateway/"
echo "+ uniwasm ps; uniwasm ps -i; uniwasm logs hello"
uniwasm ps
uniwasm ps -i
uniwasm logs hello
echo "dashboard: ${api}/dashboard/ (sign in with the tenant token above)"
