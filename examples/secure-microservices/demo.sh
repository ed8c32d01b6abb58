#!/usr/bin/env bash
# Secure microservices: a small shop split into four services (catalogue,
# cart, pricing, checkout) that call each other only along granted edges and
# keep their state in KV; then the cart is replaced by a hostile build that
# tries every door, and is refused everywhere — visible in `uniwasm ps`, the
# app's logs and the API/dashboard. A throw-away node on 127.0.0.1 (free
# ports, a temp directory), stopped at the end.
# Run from anywhere after `npm install && npm run build`; needs curl.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common/demo-lib.sh"

start_node
shop="http://shop.localhost:$port"
# curl through the gateway with the shop's host name (*.localhost is 127.0.0.1).
get() { show curl "$@"; curl -sS --resolve "shop.localhost:$port:127.0.0.1" "$@"; }
echo "node: API $api, gateway $gw (data in $work/node)"

say "Two tenants: the shop, and a rival with a vault of secrets"
shop_token=$(uniwasm tenants create shop | sed -n 's/^token (shown once): //p')
rival_token=$(uniwasm tenants create rival | sed -n 's/^token (shown once): //p')
export UNIWASM_TOKEN=$shop_token   # the CLI acts as the shop from here on
echo "tenants shop and rival created (a token each)"

# Builds an image from its directory (uniwasm.toml: module, grants, limits, routes), saves it, deploys it.
ship() { # DIR APP TOKEN
  uniwasm build "$here/$1" >/dev/null
  uniwasm save "$1" -o "$work/$1.tar" >/dev/null
  UNIWASM_TOKEN=$3 uniwasm deploy "$work/$1.tar" --name "$2" 2>/dev/null | head -1
}

say "The shop's services, each from an image whose uniwasm.toml lists its grants"
for svc in catalogue cart pricing checkout; do
  grep -E '^(extensions|key_value_stores|allowed_services|variables) =' "$here/$svc/uniwasm.toml" | sed "s/^/  $svc: /"
done
for svc in catalogue cart pricing checkout; do ship "$svc" "$svc" "$shop_token"; done
ship vault vault "$rival_token"
# checkout's payment secret: write-only through the API, readable only by checkout.
curl -sS -X PUT -H "authorization: Bearer $shop_token" -H 'content-type: application/json' \
  -d '{"value": "sk_live_d3m0_s3cr3t", "secret": true}' "$api/v1/tenants/shop/apps/checkout/variables/payment_key" >/dev/null
echo "secret variable payment_key set on checkout (write-only)"
curl -sS -X POST --resolve "vault.rival.localhost:$port:127.0.0.1" -d 'put master-key rival-0001' "http://vault.rival.localhost:$port/" >/dev/null
vault_before=$(curl -sS --resolve "vault.rival.localhost:$port:127.0.0.1" "http://vault.rival.localhost:$port/")
echo "rival's $vault_before"

say "Shopping: catalogue -> cart (checks the catalogue) -> checkout (cart, pricing, stock, payment)"
get "$shop/catalogue"
get -X POST -d 'add tea 3' "$shop/cart/alice"
get -X POST -d 'add mug 1' "$shop/cart/alice"
get -X POST "$shop/checkout/alice"
get "$shop/catalogue"

say "The cart is replaced by a hostile build (same app, same grants) that tries every door"
echo "(uniwasm build warns about each import its manifest does not grant: they will get ENOTCAPABLE)"
ship cart-hostile cart "$shop_token"
get -X POST -d 'add tea 1' "$shop/cart/mallory"

say "Refusals, as the platform saw them"
show uniwasm ps
uniwasm ps
echo
echo "$ uniwasm logs cart | grep -i -e refused -e denied"
uniwasm logs cart | grep -i -e refused -e denied | cut -c 1-160 || true
echo
echo "\$ curl $api/v1/tenants/shop/apps/cart   (its deniedCalls, as the dashboard shows them)"
curl -sS -H "authorization: Bearer $shop_token" "$api/v1/tenants/shop/apps/cart" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const [k,v] of Object.entries(JSON.parse(s).deniedCalls))console.log(`  ${k.padEnd(40)} ${v}`)})'

say "Nothing else moved: the stock, the orders and the rival's vault are as they were"
get "$shop/catalogue"
get "$shop/checkout"
vault_after=$(curl -sS --resolve "vault.rival.localhost:$port:127.0.0.1" "http://vault.rival.localhost:$port/")
echo "rival's $vault_after"
[ "$vault_before" = "$vault_after" ] && echo "(unchanged)"

say "Rolling back to the real cart"
ship cart cart "$shop_token"
get -X POST -d 'add cake 2' "$shop/cart/bob"
echo
echo "dashboard: $api/dashboard/ (sign in with a tenant token: apps, denied host calls)"
