#!/usr/bin/env node
// The demo's measurement: acme's and globex's latency alone and while
// mallory attacks, in the same run. Rounds alternate (alone, attack, alone,
// attack, ...) so that whatever else the machine does falls on both alike.
// In each round acme and globex each run a closed loop of requests (one at a
// time, on a kept-alive connection); in attack rounds mallory keeps ATTACKERS
// requests in flight, cycling through its attacks, and its answers are counted.
// mallory is a process of its own (as an attacker would be), so reading its
// floods does not delay this process's clocks.
//   node latency.mjs GATEWAY_URL [ROUNDS=6] [REQUESTS_PER_ROUND=40] [ATTACKERS=3]
// (ATTACKS=loop,output,... picks the attacks.)
// Prints one line per tenant: p50 and p99 alone and under attack, and the ratio.
import { fork } from "node:child_process";
import { Agent, request } from "node:http";
import { fileURLToPath } from "node:url";

const [gateway, rounds = "6", perRound = "40", attackers = "3", role = "measure", first = "0"] = process.argv.slice(2);
const gw = new URL(gateway);
const ATTACKS = (process.env.ATTACKS ?? "loop,memory,output,kv,outbound,escape,tenants").split(",");

function send(host, path, body, agent = false) {
  return new Promise((resolve) => {
    const start = performance.now();
    const req = request({ host: gw.hostname, port: gw.port, path, method: body === undefined ? "GET" : "POST", headers: { host }, agent }, (res) => {
      let bytes = 0;
      let head = "";
      res.on("data", (c) => {
        if (bytes < 512) head += c.subarray(0, 512).toString();
        bytes += c.length;
      });
      // A refusal names itself: {"error":{"code":...}}.
      res.on("end", () => resolve({ status: res.statusCode, code: /"code":"([a-z_]+)"/.exec(head)?.[1], bytes, ms: performance.now() - start }));
      // The node cut the response short (an output limit): counted as "cut".
      res.on("aborted", () => resolve({ status: res.statusCode, code: "cut", bytes, ms: performance.now() - start }));
      res.on("error", () => resolve({ status: res.statusCode, code: "cut", bytes, ms: performance.now() - start }));
    });
    req.on("error", () => resolve({ status: 0, bytes: 0, ms: performance.now() - start }));
    req.end(body);
  });
}

// Customers' clients keep their connection open (one each); mallory opens a new one per attack.
const keepAlive = () => new Agent({ keepAlive: true, maxSockets: 1 });
const acmeAgent = keepAlive(), globexAgent = keepAlive();
const good = {
  acme: () => send("invoices.acme.localhost", "/", "2 1250 widgets\n1 999 gadget\n12 5 screws\n", acmeAgent),
  globex: () => send("wordfreq.globex.localhost", "/", "the quick brown fox jumps over the lazy dog and the cat sat on the mat with the fox", globexAgent),
};
const samples = { acme: { alone: [], attack: [] }, globex: { alone: [], attack: [] } };
const failures = { acme: 0, globex: 0 };
const mallory = {};

async function round(kind, state) {
  let attacker;
  if (kind === "attack") {
    attacker = fork(fileURLToPath(import.meta.url), [gateway, rounds, perRound, attackers, "attack", String(state.next)]);
    await new Promise((r) => setTimeout(r, 300)); // the attack is under way before measuring
  }
  await Promise.all(
    Object.entries(good).map(async ([tenant, go]) => {
      for (let i = 0; i < Number(perRound); i++) {
        const r = await go();
        if (r.status !== 200) failures[tenant]++;
        samples[tenant][kind].push(r.ms);
      }
    }),
  );
  if (!attacker) return;
  // Its requests in flight end (at their limits) before the next round.
  const report = new Promise((r) => attacker.once("message", r));
  attacker.send("stop");
  const { got, next } = await report;
  state.next = next;
  for (const [k, n] of Object.entries(got)) mallory[k] = (mallory[k] ?? 0) + n;
}

const p = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((q / 100) * s.length) - 1))];
};
async function measure() {
  await Promise.all(Object.values(good).map((go) => go())); // warm the compiled-module cache
  const state = { next: 0 }; // the attacks go round across rounds
  for (let i = 0; i < Number(rounds); i++) await round(i % 2 === 0 ? "alone" : "attack", state);
  for (const tenant of Object.keys(good)) {
    const a = samples[tenant].alone, b = samples[tenant].attack;
    console.log(
      `${tenant.padEnd(7)} alone: p50 ${p(a, 50).toFixed(1).padStart(6)} ms, p99 ${p(a, 99).toFixed(1).padStart(6)} ms | under attack: p50 ${p(b, 50).toFixed(1).padStart(6)} ms, p99 ${p(b, 99).toFixed(1).padStart(6)} ms | p99 ratio ${(p(b, 99) / p(a, 99)).toFixed(2)} | ${a.length + b.length} requests, ${failures[tenant]} failed`,
    );
  }
  const byAttack = {};
  for (const [k, n] of Object.entries(mallory)) {
    const [name, status] = k.split(" ");
    (byAttack[name] ??= []).push(`${status}×${n}`);
  }
  acmeAgent.destroy();
  globexAgent.destroy();
  console.log(`mallory meanwhile: ${Object.entries(byAttack).map(([name, s]) => `${name} ${s.join(" ")}`).join(", ")}`);
}

// The attacker process: keeps `attackers` attacks in flight from attack number `first` on,
// until told to stop; then reports what it got once those in flight have ended.
async function attackUntilStopped() {
  let attacking = true;
  let next = Number(first);
  const got = {};
  process.on("message", () => (attacking = false));
  const attack = async () => {
    while (attacking) {
      const name = ATTACKS[next++ % ATTACKS.length];
      const r = await send("plugin.mallory.localhost", `/${name}`, "");
      const key = `${name} ${r.status}${r.code ? `:${r.code}` : ""}`;
      got[key] = (got[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Number(attackers) }, attack));
  process.send({ got, next });
  process.disconnect();
}

if (role === "attack") await attackUntilStopped();
else await measure();
