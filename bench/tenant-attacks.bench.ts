/**
 * Issue 12's bar, attack by attack: the multi-tenant SaaS example's node
 * (3 executors, deadlines bounded at 2 s, three tenants on one plan) with
 * acme's and globex's ordinary code and mallory's hostile code, and for each
 * of mallory's attacks alone — then the demo's two mixes — acme's and
 * globex's p99 alone and under the attack, in alternating rounds of the same
 * run (examples/multi-tenant-saas/latency.mjs: mallory is a process of its
 * own keeping 2 attacks in flight). Goal: p99 under attack within 2x of alone.
 *
 *   npm run bench -- tenant-attacks        (--quick: fewer rounds)
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNode } from "../src/server/index.js";
import { ship } from "../test/examples/helpers.js";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";

/** The SaaS example's plan (examples/multi-tenant-saas/demo.sh). */
const PLAN = { memoryMiB: 64, cpuMsPerMinute: 60_000, maxConcurrency: 1, kvMaxTotalBytes: 262_144, maxApps: 5 };

const CASES: { label: string; attacks: string }[] = [
  { label: "output flood", attacks: "output" },
  { label: "KV flood", attacks: "kv" },
  { label: "spinning loop", attacks: "loop" },
  { label: "memory bomb", attacks: "memory" },
  { label: "path escapes", attacks: "escape" },
  { label: "forbidden outbound", attacks: "outbound" },
  { label: "cross-tenant reaches", attacks: "tenants" },
  { label: "the demo's flood mix", attacks: "output,kv" },
  { label: "the demo's other mix", attacks: "loop,memory,escape,outbound,tenants" },
];

interface Row {
  tenant: string;
  aloneP99: number;
  attackP99: number;
  aloneP50: number;
  attackP50: number;
  failed: number;
}

/** Runs the example's latency script; returns its per-tenant rows and mallory's line. */
function measure(root: string, gateway: string, attacks: string, rounds: number, perRound: number): Promise<{ rows: Row[]; mallory: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(root, "examples/multi-tenant-saas/latency.mjs"), gateway, String(rounds), String(perRound), "2"], { env: { ...process.env, ATTACKS: attacks }, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => (out += c.toString()));
    p.on("error", reject);
    p.on("close", (code) => {
      if (code !== 0) return reject(new Error(`latency.mjs exited ${code}: ${out}`));
      const rows = [...out.matchAll(/^(\w+) +alone: p50 +([\d.]+) ms, p99 +([\d.]+) ms \| under attack: p50 +([\d.]+) ms, p99 +([\d.]+) ms \| p99 ratio [\d.]+ \| \d+ requests, (\d+) failed$/gm)].map((m) => ({
        tenant: m[1]!,
        aloneP50: Number(m[2]),
        aloneP99: Number(m[3]),
        attackP50: Number(m[4]),
        attackP99: Number(m[5]),
        failed: Number(m[6]),
      }));
      resolve({ rows, mallory: /^mallory meanwhile: (.*)$/m.exec(out)?.[1] ?? "" });
    });
  });
}

export async function run(ctx: BenchContext): Promise<BenchSection[]> {
  const rounds = ctx.quick ? 6 : 10;
  // p99 of fewer than a few hundred samples is one or two requests: noise, not a tail.
  const perRound = 100;
  const node = await startNode({ dataDir: mkdtempSync(join(tmpdir(), "uniwasm-attacks-")), apiPort: 0, gatewayPort: 0, executors: 3, maxTimeoutMs: 2000, logger: false });
  try {
    const admin = node.bootstrap!.secret;
    const tenants: Record<string, { name: string; token: string }> = {};
    for (const name of ["acme", "globex", "mallory"]) {
      const r = await fetch(node.apiUrl + "/v1/tenants", { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ name, quotas: PLAN }) });
      const json = (await r.json()) as { token: { secret: string } };
      tenants[name] = { name, token: json.token.secret };
    }
    await ship(node, tenants["acme"]!, "multi-tenant-saas/acme", "invoices");
    await ship(node, tenants["globex"]!, "multi-tenant-saas/globex", "wordfreq");
    await ship(node, tenants["mallory"]!, "multi-tenant-saas/mallory", "plugin", { limits: { maxMemoryBytes: 64 * 1024 * 1024, timeoutMs: 2000 } });

    const rows: BenchRow[] = [];
    const notes: string[] = [];
    for (const c of CASES) {
      ctx.log(`tenant-attacks: ${c.label} (${rounds} alternating rounds of ${perRound} requests per tenant)`);
      const m = await measure(ctx.root, node.gatewayUrl, c.attacks, rounds, perRound);
      for (const r of m.rows) {
        rows.push({
          name: `${r.tenant} under ${c.label}`,
          metric: "p99 latency",
          unit: "ms",
          ours: r.attackP99,
          baselines: { [`${r.tenant} alone`]: r.aloneP99 },
          ratio: r.aloneP99 / r.attackP99,
          goal: "<= 2x of alone",
          pass: r.attackP99 <= 2 * r.aloneP99 && r.failed === 0,
        });
      }
      notes.push(`${c.label}: p50 ${m.rows.map((r) => `${r.tenant} ${r.aloneP50} -> ${r.attackP50} ms`).join(", ")}; failed ${m.rows.map((r) => r.failed).join("/")}; mallory meanwhile: ${m.mallory}`);
    }
    notes.push(`${(rounds / 2) * perRound} requests alone and as many under attack per tenant and case; mallory keeps 2 attacks in flight from a process of its own (one runs at a time: maxConcurrency 1). Ratio: alone p99 / under-attack p99 (>= 0.50x meets the goal).`);
    return [{ title: "tenant attacks: the others' p99 under each of a hostile tenant's attacks (issue 12)", rows, notes }];
  } finally {
    await node.close();
  }
}
