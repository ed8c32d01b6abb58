#!/usr/bin/env bash
# Edge node: three apps under one resource manager on a constrained budget
# (a node with 256 MiB for live instances and one executor): media processing
# (resize/filter images), local ML inference (a digit classifier whose weights
# ship in its image) and data aggregation (sensor readings, rolling statistics
# in KV, a summary posted to the one allowed collector). Each app belongs to a
# tenant whose weight is its priority; then a burst of media requests, during
# which the other two still answer within their deadlines. A throw-away node
# on 127.0.0.1 (free ports, a temp directory), stopped at the end.
# Run from anywhere after `npm install && npm run build`; needs curl.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common/demo-lib.sh"
BURST=${BURST:-16}   # media requests in the burst

# --outbound-private: the collector runs on this machine, and a node opens loopback to apps only when told.
show uniwasm serve --memory-mib 256 --executors 1 --outbound-private 127.0.0.1 --port 0 --gateway-port 0
node "$here/collector.mjs" >"$work/collector.out" &
collector_pid=$!
stop_at_exit "$collector_pid"
start_node --memory-mib 256 --executors 1 --outbound-private 127.0.0.1
for _ in $(seq 300); do grep -q listening "$work/collector.out" 2>/dev/null && break; sleep 0.1; done
collector=$(sed -n 's/^collector listening on //p' "$work/collector.out")
echo "node: API $api, gateway $gw (data in $work/node); collector: $collector"
# at HOST ARGS...: curl through the gateway with an app's host name (*.localhost is 127.0.0.1).
at() { local host=$1; shift; curl -sS --resolve "$host:$port:127.0.0.1" "$@"; }

say "Three tenants, one per app; the weight is the priority when they compete for the executor"
uniwasm tenants create vision --weight 4 --quota memoryMiB=32 >"$work/vision.tok"
uniwasm tenants create sensors --weight 2 --quota memoryMiB=16 >"$work/sensors.tok"
uniwasm tenants create cameras --weight 1 --quota memoryMiB=128 >"$work/cameras.tok"
tok() { sed -n 's/^token (shown once): //p' "$work/$1.tok"; }
show uniwasm tenants
uniwasm tenants | awk '{ printf "  %-8s %-7s %s\n", $1, $3, $6 }'

say "Their apps, each an image built from the uniwasm.toml beside its C source"
for d in media digits telemetry; do uniwasm build "$here/$d" >/dev/null && uniwasm save "$d" -o "$work/$d.tar" >/dev/null; done
UNIWASM_TOKEN=$(tok cameras) uniwasm deploy "$work/media.tar" --name media 2>/dev/null | head -1
# digits is a reactor kept warm (--min 1): the model is loaded once, and its 8 MiB stay reserved.
UNIWASM_TOKEN=$(tok vision) uniwasm deploy "$work/digits.tar" --name digits --min 1 2>/dev/null | head -1
# telemetry: the operator narrows its outbound grant to the collector started above (through the API).
digest=$(curl -sS -X POST -H "authorization: Bearer $(tok sensors)" -H 'content-type: application/x-tar' --data-binary "@$work/telemetry.tar" "$api/v1/tenants/sensors/images" | node -pe 'JSON.parse(require("fs").readFileSync(0)).digest')
curl -sS -X PUT -H "authorization: Bearer $(tok sensors)" -H 'content-type: application/json' \
  -d "{\"image\": \"$digest\", \"env\": {\"COLLECTOR_URL\": \"$collector/ingest\", \"NODE_NAME\": \"edge-17\"}, \"extensions\": {\"allowedOutboundHosts\": [\"$collector\"]}}" \
  "$api/v1/tenants/sensors/apps/telemetry" | node -pe 'const a=JSON.parse(require("fs").readFileSync(0)); `deployed ${a.tenant}/${a.name} revision ${a.revision} (${a.config.abi}; outbound: ${a.config.extensions.allowedOutboundHosts})`'
media=media.cameras.localhost digits=digits.vision.localhost telemetry=telemetry.sensors.localhost

say "Media: a 640x480 photo in, a thumbnail and an edge map out"
node "$here/pnm.mjs" scene 640 480 "$work/scene.ppm"
show curl --data-binary @scene.ppm "http://$media/resize?width=64" -o thumb.ppm
at $media --data-binary "@$work/scene.ppm" "http://$media:$port/resize?width=64" -o "$work/thumb.ppm"
node "$here/pnm.mjs" show "$work/thumb.ppm"
show curl --data-binary @scene.ppm "http://$media/edges" -o edges.pgm
at $media --data-binary "@$work/scene.ppm" "http://$media:$port/edges" -o "$work/edges.pgm"
node "$here/pnm.mjs" show "$work/edges.pgm" | head -1

say "Inference: the classifier on its bundled held-out samples, one drawn, one posted"
show curl "http://$digits/"
at $digits "http://$digits:$port/" | tail -4
show curl "http://$digits/14"
at $digits "http://$digits:$port/14"
sample=$(sed -n 8p "$here/digits/samples/digits.txt")
show curl -d "${sample#* }" "http://$digits/"
at $digits -d "${sample#* }" "http://$digits:$port/"

say "Aggregation: readings in, rolling statistics from KV, a summary to the collector"
show curl -d $'temp-1 21.5\ntemp-1 22.0\nhumidity 41\n...' "http://$telemetry/"
readings=""
for i in $(seq 1 12); do readings+="temp-1 $((20 + i % 5)).$((i % 10))"$'\n'"temp-2 $((17 + i % 3)).5"$'\n'"humidity $((40 + i))"$'\n'; done
at $telemetry --data-binary "$readings" "http://$telemetry:$port/"
show curl "http://$telemetry/"
at $telemetry "http://$telemetry:$port/"
show curl -X POST "http://$telemetry/flush"
at $telemetry -X POST "http://$telemetry:$port/flush"
sleep 0.2
grep '^collector: summary' "$work/collector.out" | tail -1

say "A burst of $BURST media requests (blur, radius 8, on the 640x480 photo); meanwhile the others are asked every 0.25 s"
: >"$work/burst.txt"
start=$(date +%s%N)
for i in $(seq "$BURST"); do
  (at $media --data-binary "@$work/scene.ppm" "http://$media:$port/blur?radius=8" -o /dev/null -w "media %{http_code} %{time_total}\n" >>"$work/burst.txt") &
done
sleep 0.2
for i in $(seq 8); do
  at $digits -o /dev/null -w "digits %{http_code} %{time_total}\n" "http://$digits:$port/3" >>"$work/burst.txt"
  at $telemetry -o /dev/null -w "telemetry %{http_code} %{time_total}\n" --data-binary "temp-1 2$i.0" "http://$telemetry:$port/" >>"$work/burst.txt"
  sleep 0.25
done
wait $(jobs -p | grep -v -e "^$node_pid\$" -e "^$collector_pid\$") 2>/dev/null || true
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
  const deadlines = { media: 10000, digits: 2000, telemetry: 2000 };
  for (const app of ["media", "digits", "telemetry"]) {
    const mine = lines.filter((l) => l[0] === app);
    const ms = mine.map((l) => Number(l[2]) * 1000).sort((a, b) => a - b);
    const ok = mine.filter((l) => l[1] === "200").length;
    const other = {};
    for (const l of mine) if (l[1] !== "200") other[l[1]] = (other[l[1]] ?? 0) + 1;
    const shed = Object.entries(other).map(([code, n]) => `, ${n} answered ${code}`).join("");
    console.log(`${app.padEnd(10)} ${String(mine.length).padStart(2)} requests, ${String(ok).padStart(2)} answered 200; slowest ${ms.at(-1).toFixed(0).padStart(5)} ms, median ${ms[Math.floor(ms.length / 2)].toFixed(0).padStart(5)} ms (deadline ${deadlines[app]} ms)${shed}`);
  }' "$work/burst.txt"
echo "burst over in $elapsed ms"

say "The resource manager's view: priorities, the memory budget, instances"
show uniwasm ps --all
uniwasm ps --all | cut -c 1-120
echo
show uniwasm ps -i --all
uniwasm ps -i --all | cut -c 1-120
echo
echo "\$ curl $api/v1/node   (the dashboard's node panel)"
curl -sS -H "authorization: Bearer $(cat "$work/node/bootstrap-token")" "$api/v1/node" |
  node -pe 'const n=JSON.parse(require("fs").readFileSync(0)); `  executors ${n.executors}; memory reserved ${(n.memory.reservedBytes/1048576).toFixed(0)} MiB of the ${(n.memory.budgetBytes/1048576).toFixed(0)} MiB budget`'
for t in vision sensors cameras; do
  curl -sS -H "authorization: Bearer $(tok $t)" "$api/v1/tenants/$t/usage" |
    T=$t node -pe 'const u=JSON.parse(require("fs").readFileSync(0)).live; `  ${process.env.T.padEnd(8)} live instances ${u.liveInstances}, memory reserved ${(u.reservedMemoryBytes/1048576).toFixed(0)} MiB, CPU ${u.cpuMsLastMinute.toFixed(0)} ms in the last minute`'
done

say "The budget is a hard bound: an app asking for more memory than its tenant's quota is refused"
show uniwasm deploy media.tar --name media-hd --memory 192M
UNIWASM_TOKEN=$(tok cameras) uniwasm deploy "$work/media.tar" --name media-hd --memory 192M 2>&1 | grep -v "^uploaded" || true
echo
echo "dashboard: $api/dashboard/ (sign in with $work/node/bootstrap-token: node memory budget, tenants by weight)"
