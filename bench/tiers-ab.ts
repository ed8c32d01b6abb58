/**
 * A/B of node builds on the gateway, interleaved in one run (tiers.bench.ts's
 * (c) for two builds of the code, e.g. main before and after a change):
 *
 *   node dist/bench/tiers-ab.js ROUNDS SECONDS 'NAME|DIST|OPTIONS' ...
 *   node dist/bench/tiers-ab.js 5 3 'iso|/tmp/before/dist|{"executors":1,"inlineFuel":0}' \
 *     'before|/tmp/before/dist|{"executors":1,"tier":"process"}' 'after|dist|{"executors":1,"tier":"process"}'
 *
 * Each NAME is a node (DIST/bench/servers/uniwasm-node.js OPTIONS) pinned to
 * core 0; wrk -t1 -c16 on core 1 asks for its reactor and WAGI hellos, rounds
 * in alternating order. Per case: median and best req/s, and the CPU of the
 * node's whole process tree (its sandboxed executor processes included) per
 * request — the steadier figure on a shared machine.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pinned, startJsonServer, wrk, type Load, type ServerProcess } from "./load.js";

function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").split(" ")) if (c.trim()) out.push(Number(c), ...descendants(Number(c)));
  }
  return out;
}

/** CPU time of a process and its descendants, µs (those that exited meanwhile are left out). */
function treeCpuUs(pid: number): number {
  let ticks = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited
    }
  }
  return ticks * 10_000;
}

const [rounds = "3", seconds = "3", ...specs] = process.argv.slice(2);
const servers: { name: string; server: ServerProcess }[] = [];
try {
  for (const spec of specs) {
    const [name, dist, options] = spec.split("|") as [string, string, string];
    servers.push({ name, server: await startJsonServer(...pinned("0", process.execPath, [join(resolve(dist), "bench/servers/uniwasm-node.js"), options])) });
  }
  const cases = servers.flatMap(({ name, server }) => (["reactor", "wagi"] as const).map((abi) => ({ key: `${name}/${abi}`, server, host: `${abi}.hello.localhost` })));
  for (const c of cases) await wrk(c.server.url + "/", c.host, 16, 2, c.server.pid, "1"); // warm-up
  const runs = new Map<string, { load: Load; cpuUs: number }[]>();
  for (let r = 0; r < Number(rounds); r++) {
    for (const c of r % 2 === 0 ? cases : [...cases].reverse()) {
      const cpu0 = treeCpuUs(c.server.pid);
      const load = await wrk(c.server.url + "/", c.host, 16, Number(seconds), c.server.pid, "1");
      const cpuUs = (treeCpuUs(c.server.pid) - cpu0) / Math.max(1, load.requests);
      runs.set(c.key, [...(runs.get(c.key) ?? []), { load, cpuUs }]);
      console.log(`round ${r + 1} ${c.key}: ${load.rps.toFixed(0)} req/s, p99 ${load.p99} ms, ${load.errors} errors, ${cpuUs.toFixed(0)} µs CPU/request`);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [key, rs] of runs) {
    const rps = rs.map((x) => x.load.rps);
    console.log(`${key}: median ${median(rps).toFixed(0)} req/s (best ${Math.max(...rps).toFixed(0)}), CPU/request median ${median(rs.map((x) => x.cpuUs)).toFixed(0)} µs (least ${Math.min(...rs.map((x) => x.cpuUs)).toFixed(0)})`);
  }
} finally {
  for (const { server } of servers) await server.stop();
}
