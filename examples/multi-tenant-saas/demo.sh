#!/usr/bin/env bash
# Multi-tenant SaaS: three customers (tenants) deploy their own code on one
# node under the same plan (quotas); acme's and globex's code is ordinary,
# mallory's is hostile: an infinite loop, a memory bomb, an output flood, path
# escapes, a KV flood, outbound requests to forbidden hosts and reaches for
# the other tenants. Each is refused or ended at its limit, per-tenant usage
# shows who spent what, and acme's and globex's p99 latency under the attack
# is compared with their p99 alone, measured in this run. A throw-away node
# on 127.0.0.1 (free ports, a temp directory), stopped at the end.
# Run from anywhere after `npm install && npm run build`; needs curl.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common/demo-lib.sh"
ROUNDS=${ROUNDS:-10} PER_ROUND=${PER_ROUND:-100}

# One executor per tenant of the plan below (each may run one request at a time); requests end by 2 s.
show uniwasm serve --executors 3 --max-timeout 2s --port 0 --gateway-port 0
start_node --executors 3 --max-timeout 2s
echo "node: API $api, gateway $gw (data in $work/node)"
at() { local host=$1; shift; curl -sS --resolve "$host:$port:127.0.0.1" "$@"; }

say "Three customers on the same plan: 64 MiB, a minute of CPU a minute, one request at a time, 256 KiB of KV"
plan=(--quota memoryMiB=64 --quota cpuMsPerMinute=60000 --quota maxConcurrency=1 --quota kvMaxTotalBytes=262144 --quota maxApps=5)
show uniwasm tenants create mallory "${plan[@]}"
for t in acme globex mallory; do uniwasm tenants create "$t" "${plan[@]}" >"$work/$t.tok"; done
tok() { sed -n 's/^token (shown once): //p' "$work/$1.tok"; }

say "Each deploys its own code with its own token"
for d in acme globex mallory; do uniwasm build "$here/$d" >/dev/null; done
uniwasm save invoices -o "$work/acme.tar" >/dev/null
uniwasm save wordfreq -o "$work/globex.tar" >/dev/null
uniwasm save plugin -o "$work/mallory.tar" >/dev/null
UNIWASM_TOKEN=$(tok acme) uniwasm deploy "$work/acme.tar" --name invoices 2>/dev/null | head -1
UNIWASM_TOKEN=$(tok globex) uniwasm deploy "$work/globex.tar" --name wordfreq 2>/dev/null | head -1
echo "mallory's manifest asks for 4 GiB and 10 minutes, every outbound host, the other tenants' app and store names:"
show uniwasm deploy mallory.tar --name plugin
UNIWASM_TOKEN=$(tok mallory) uniwasm deploy "$work/mallory.tar" --name plugin 2>&1 | grep -v -e '^uploaded' -e '^uniwasm build' -e '^warning' || true
echo "so it takes the most the plan and the node allow:"
show uniwasm deploy mallory.tar --name plugin --memory 64M --timeout 2s
UNIWASM_TOKEN=$(tok mallory) uniwasm deploy "$work/mallory.tar" --name plugin --memory 64M --timeout 2s 2>/dev/null | head -1
acme=invoices.acme.localhost globex=wordfreq.globex.localhost mallory=plugin.mallory.localhost
show curl -d $'2 1250 widgets\n1 999 gadget' "http://$acme/"
at $acme -d $'2 1250 widgets\n1 999 gadget' "http://$acme:$port/"
show curl -d 'the cat and the hat and the bat' "http://$globex/"
at $globex -d 'the cat and the hat and the bat' "http://$globex:$port/"

say "mallory's attacks, one by one"
attack() { # NAME: what the answer was, cut to its first lines
  show curl "http://$mallory/$1"
  at $mallory -X POST "http://$mallory:$port/$1" -o "$work/$1.out" 2>/dev/null -w '%{http_code} %{size_download}\n' >"$work/$1.meta" || true
  read -r status size <"$work/$1.meta"
  if [ "$1" = output ]; then echo "HTTP $status: $size bytes of AAAA..., then the response was cut (at the 16 MiB response limit, or at the deadline)"
  else echo "HTTP $status:"; head -c 2000 "$work/$1.out" | head -n "${2:-40}" | sed 's/^/  /'; echo; fi
}
attack loop
attack memory
attack output
attack escape
attack kv
attack outbound
attack tenants

say "acme's and globex's data is untouched"
at $acme -d '1 100 check' "http://$acme:$port/"
at $globex -d 'still here' "http://$globex:$port/"

say "Latency: acme and globex alone, then while mallory keeps 2 attacks in flight ($ROUNDS rounds each, alternating)"
echo "-- mallory's output and KV floods (work for it on the node's serving thread, paced to its share of that thread):"
ATTACKS=output,kv node "$here/latency.mjs" "$gw" "$ROUNDS" "$PER_ROUND" 2
echo "-- mallory's loop, memory bomb, path escapes, outbound and cross-tenant attacks:"
ATTACKS=loop,memory,escape,outbound,tenants node "$here/latency.mjs" "$gw" "$ROUNDS" "$PER_ROUND" 2

say "The operator cuts mallory's CPU quota to 5 s a minute: the node refuses it at the door"
show uniwasm tenants set mallory --quota cpuMsPerMinute=5000
uniwasm tenants set mallory --quota cpuMsPerMinute=5000 | sed 's/{.*}/.../'
at $mallory -X POST -w '\n(HTTP %{http_code})\n' "http://$mallory:$port/loop" || true

say "Per-tenant usage, as the dashboard shows it"
sleep 1
printf '  %-8s %9s %7s %9s %9s %12s %12s %14s\n' tenant requests errors rejected "CPU ms" "bytes out" "CPU ms/min" "paced ms/min"
for t in acme globex mallory; do
  curl -sS -H "authorization: Bearer $(tok $t)" "$api/v1/tenants/$t/usage" | T=$t node -e '
    const u = JSON.parse(require("fs").readFileSync(0)); const d = u.days.at(-1) ?? {};
    console.log(`  ${process.env.T.padEnd(8)} ${String(d.requests ?? 0).padStart(9)} ${String(d.errors ?? 0).padStart(7)} ${String(d.rejected ?? 0).padStart(9)} ${String(Math.round(d.cpuMs ?? 0)).padStart(9)} ${String(d.bytesOut ?? 0).padStart(12)} ${String(Math.round(u.live.cpuMsLastMinute)).padStart(12)} ${String(u.live.pacedMsLastMinute).padStart(14)}`)'
done
echo
show uniwasm ps --all
uniwasm ps --all | cut -c 1-150
echo
echo "\$ uniwasm logs plugin --tenant mallory | tail -5"
UNIWASM_TOKEN=$(tok mallory) uniwasm logs plugin -n 5 | cut -c 1-160 || true
echo
echo "dashboard: $api/dashboard/ (sign in with $work/node/bootstrap-token: tenants, usage, denied calls)"
