/**
 * Issue 8's starvation, load-shaped: a node with 2 executors; tenant acme
 * keeps sending cheap WAGI requests (4 at a time, closed loop) while tenant
 * evil keeps 2, then 4, spinning requests in flight (each runs to its 10 s
 * deadline, then is sent again). Reported beside acme alone just before (same run):
 * acme's requests per second, p99 latency, the longest time acme went without
 * a response ("longest stall": ~10 s twice before the scheduler fix), and its
 * failures. The deterministic proof is test/manager/scheduler.test.ts; this
 * shows the shape under real executors.
 *
 *   npm run bench -- tenant-fairness
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNode, type RunningNode } from "../src/server/index.js";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";

interface Phase {
  ok: number;
  failed: number;
  rps: number;
  p50: number;
  p99: number;
  stallMs: number;
}

function get(node: RunningNode, host: string, path: string, timeoutMs: number): Promise<number> {
  const u = new URL(node.gatewayUrl);
  return new Promise((resolve) => {
    const req = request({ host: u.hostname, port: u.port, path, headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** acme's closed loop for `seconds`, while `spinners` evil requests are kept in flight. */
async function phase(node: RunningNode, seconds: number, spinners: number): Promise<Phase & { evil: Record<number, number> }> {
  let stop = false;
  const evil: Record<number, number> = {};
  const spin = async () => {
    while (!stop) {
      const status = await get(node, "spin.evil.localhost", "/spin", 30_000);
      evil[status] = (evil[status] ?? 0) + 1;
    }
  };
  const spinning = Array.from({ length: spinners }, spin);
  await new Promise((r) => setTimeout(r, spinners > 0 ? 300 : 0)); // the spinners hold their executors first
  const latencies: number[] = [];
  let failed = 0;
  const started = performance.now();
  let last = started;
  let stallMs = 0;
  const end = started + seconds * 1000;
  const client = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const status = await get(node, "hello.acme.localhost", "/", 30_000);
      const now = performance.now();
      if (status === 200) {
        latencies.push(now - t0);
        stallMs = Math.max(stallMs, now - last);
        last = now;
      } else failed++;
    }
  };
  await Promise.all(Array.from({ length: 4 }, client));
  stallMs = Math.max(stallMs, performance.now() - last);
  stop = true;
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  void Promise.all(spinning); // they end at their deadlines; the node closes under them
  return { ok: latencies.length, failed, rps: latencies.length / elapsed, p50: pct(50), p99: pct(99), stallMs, evil };
}

export async function run(ctx: BenchContext): Promise<BenchSection[]> {
  const seconds = ctx.quick ? 4 : 12;
  const node = await startNode({ dataDir: mkdtempSync(join(tmpdir(), "uniwasm-fair-")), apiPort: 0, gatewayPort: 0, executors: 2, logger: false });
  try {
    const admin = node.bootstrap!.secret;
    const api = async (method: string, path: string, body: unknown, type = "application/json") => {
      const r = await fetch(node.apiUrl + path, { method, headers: { authorization: `Bearer ${admin}`, "content-type": type }, body: type === "application/json" ? JSON.stringify(body) : (body as Uint8Array) });
      return r.json() as Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    for (const t of ["acme", "evil"]) await api("POST", "/v1/tenants", { name: t });
    const module = (name: string) => new Uint8Array(readFileSync(join(ctx.root, "test/fixtures/wagi", name)));
    const hello = await api("POST", "/v1/tenants/acme/images?name=hello", module("hello.wasm"), "application/wasm");
    await api("PUT", "/v1/tenants/acme/apps/hello", { image: hello.digest });
    const handler = await api("POST", "/v1/tenants/evil/images?name=spin", module("handler.wasm"), "application/wasm");
    await api("PUT", "/v1/tenants/evil/apps/spin", { image: handler.digest, limits: { timeoutMs: 10_000 } });
    for (let i = 0; i < 20; i++) await get(node, "hello.acme.localhost", "/", 5000); // warm

    const rows: BenchRow[] = [];
    const notes: string[] = [];
    for (const spinners of [2, 4]) {
      // acme alone right before each contended phase: on a shared machine, neighbours' figures drift.
      ctx.log(`tenant-fairness: acme alone, ${seconds} s`);
      const alone = await phase(node, seconds, 0);
      ctx.log(`tenant-fairness: acme while evil keeps ${spinners} spinning requests in flight, ${seconds} s`);
      const p = await phase(node, seconds, spinners);
      const label = `acme while evil spins ×${spinners}`;
      rows.push({ name: label, metric: "requests/s", unit: "req/s", ours: p.rps, baselines: { "acme alone": alone.rps }, better: "higher", ratio: p.rps / alone.rps });
      rows.push({ name: label, metric: "p99 latency", unit: "ms", ours: p.p99, baselines: { "acme alone": alone.p99 }, better: "lower", ratio: alone.p99 / p.p99 });
      rows.push({ name: label, metric: "longest stall", unit: "ms", ours: p.stallMs, baselines: { "acme alone": alone.stallMs }, better: "lower", goal: "< 2000 ms (was ~10 000)", pass: p.stallMs < 2000 });
      rows.push({ name: label, metric: "failed requests", unit: "", ours: p.failed, baselines: { "acme alone": alone.failed }, goal: "0", pass: p.failed === 0 });
      notes.push(`${label}: acme ${p.ok} ok / ${p.failed} failed; evil's answers by status ${JSON.stringify(p.evil)} (504 at its deadline, or at the loan deadline beyond its share)`);
    }
    notes.push(`2 executors; acme: 4 clients in a closed loop on a WAGI hello; evil: handler.wasm /spin with a 10 s deadline. Scheduler: ${JSON.stringify(node.manager.scheduler.stats().loans)} loans.`);
    return [{ title: "tenant fairness: one tenant's spinning requests vs another's traffic (issue 8)", rows, notes }];
  } finally {
    await node.close();
  }
}
