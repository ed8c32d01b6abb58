/**
 * Host extension calls from an executor (issue 10, "Benchmark"): the round
 * trip of one call, each looped K times inside the guest
 * (bench/guests/ext-calls.wat) on a warm reactor in the executor pool,
 * beside WASI clock_time_get from the same guest in the same run:
 *   - a no-op extension answered in the executor (the mechanism: link, count, call);
 *   - a provider round trip to the pool's thread with a no-op provider
 *     (the worker parks on its io-bridge channel; the pool's event loop answers);
 *   - uniwasm:kv get of a warm key (the same round trip, plus SQLite);
 *   - uniwasm:service call to a warm reactor app of the same tenant (through
 *     the resource manager, onto another executor, and back).
 * A sample is one reactor call of K iterations divided by K (so each sample
 * is the mean of K calls, with the reactor call's own ~50 µs spread over
 * them); the median and p99 are over the interleaved rounds.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ExecutorPoolRunner } from "../src/manager/executor-pool-runner.js";
import { ResourceManager } from "../src/manager/manager.js";
import { kvProvider } from "../src/manager/extension-providers.js";
import { NODE_DEFAULT_LIMITS } from "../src/manager/app-config.js";
import { ServiceCalls } from "../src/server/service-calls.js";
import { KvStore, DEFAULT_KV_QUOTAS } from "../src/store/kv.js";
import type { AppRecord } from "../src/store/types.js";
import { sha256Digest } from "../src/store/blobs.js";
import { compareRow, summarize } from "./measure.js";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";

const CLOCK = "WASI clock_time_get";

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const rounds = ctx.quick ? 15 : 60;
  const K: Record<string, number> = { clock: 20_000, noop: 20_000, ping: 400, kv: 400, service: 40 };
  const runner = new ExecutorPoolRunner({ executors: 2, extensionModules: [new URL("./ext-noop.js", import.meta.url)] });
  const manager = new ResourceManager({ runner });
  const kv = KvStore.open(":memory:");
  try {
    manager.setTenant({ id: "t_bench", name: "bench", weight: 1, quotas: {} });
    const now = Date.now();
    const echoBytes = readFileSync(join(ctx.root, "test/fixtures/reactor/hello.wasm"));
    const echo: AppRecord = {
      id: "a_echo",
      tenantId: "t_bench",
      name: "echo",
      imageDigest: sha256Digest(echoBytes),
      config: { abi: "reactor", routes: [], env: {}, args: [], limits: { ...NODE_DEFAULT_LIMITS }, scale: { minInstances: 2, maxInstances: 2, idleTimeoutMs: 600_000 } },
      revision: 1,
      createdAt: now,
      updatedAt: now,
    };
    await manager.deploy(echo, { digest: echo.imageDigest, bytes: echoBytes });
    const services = new ServiceCalls((_t, name) => (name === "echo" ? echo : undefined), manager);
    kv.set("t_bench", "app:a_caller", "a_caller", new TextEncoder().encode("warm"), new TextEncoder().encode("a warm value"), DEFAULT_KV_QUOTAS);
    const session: { executor?: number } = {};
    const caller = await runner.pool.reactor(readFileSync(ctx.guest("ext-calls.wasm")), {
      extensions: {
        grants: ["bench:noop", "uniwasm:kv", "uniwasm:service"],
        providers: {
          "bench:noop": { ping: () => undefined },
          "uniwasm:kv": kvProvider(kv, { tenantId: "t_bench", appId: "a_caller", own: "app:a_caller", shared: [] }, () => DEFAULT_KV_QUOTAS),
          "uniwasm:service": {
            call: (name: string, input: Uint8Array) =>
              services.call({ tenantId: "t_bench", appId: "a_caller", appName: "caller", chain: [], allowed: ["echo"], ...(session.executor !== undefined ? { executor: session.executor } : {}) }, name, input),
          },
        },
        session,
      },
    });
    const cases = { clock: "loop_clock", noop: "loop_noop", ping: "loop_ping", kv: "loop_kv_get", service: "loop_service" } as const;
    const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as number[]])) as Record<keyof typeof cases, number[]>;
    const keys = Object.keys(cases) as (keyof typeof cases)[];
    const once = async (k: keyof typeof cases): Promise<number> => {
      const t0 = performance.now();
      const r = await caller.call(cases[k], [K[k]!]);
      const us = (performance.now() - t0) * 1000;
      if (r.outcome.reason !== "exit" || r.value !== 0) throw new Error(`${cases[k]}: ${r.outcome.reason} ${r.outcome.message} value ${String(r.value)}`);
      return us / K[k]!;
    };
    for (const k of keys) await once(k); // warm-up: JIT, SQLite statement cache, the callee's instances
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? keys : [...keys].reverse();
      for (const k of order) samples[k].push(await once(k));
    }
    await caller.close();
    const clock = summarize(samples.clock);
    const rows: BenchRow[] = [];
    const label: Record<keyof typeof cases, string> = {
      clock: "WASI clock_time_get (for scale)",
      noop: "extension call, no-op in the executor",
      ping: "extension call, no-op provider round trip",
      kv: "uniwasm:kv get, warm key",
      service: "uniwasm:service call to a warm reactor",
    };
    for (const k of keys) {
      const s = summarize(samples[k]);
      for (const metric of ["median", "p99"] as const) {
        rows.push(compareRow({ name: label[k], metric, unit: "µs/call", ours: s[metric], baselines: k === "clock" ? {} : { [CLOCK]: clock[metric] } }));
      }
    }
    ctx.log(`extension calls: ${rounds} rounds`);
    return {
      title: "Host extension calls from an executor (issue 10)",
      rows,
      notes: [
        `Each sample is one warm-reactor call looping the host call K times in the guest (clock and no-op ${K.clock}, provider round trip and kv ${K.ping}, service ${K.service}) divided by K; ${rounds} interleaved rounds, median and p99 over them.`,
        "The ratio column compares with WASI clock_time_get in the same guest and run (a ratio far below 1 is expected: a provider call crosses threads).",
        "Provider calls park the executor on its io-bridge channel (postMessage + Atomics.wait) while the pool's thread runs the provider; the service call also runs the callee on another executor through the manager.",
        "2 executors; the machine is shared, so compare figures of one run.",
      ],
    };
  } finally {
    await manager.close();
    kv.close();
  }
}
