/**
 * Density (issue 3, "Benchmark"): hold 10,000 live reactor instances of a
 * small module (one 64 KiB page, a counter) in the executor pool, each with
 * its own kernel, and report what one costs beyond its linear memory, and
 * whether 10,000 fit. Then find the real ceiling of live wasm memories in one
 * process: V8 (with the trap handler Node enables) reserves 8 GiB + guard
 * pages = 10 GiB of virtual address space per 32-bit memory, whatever its
 * maximum, and x86-64 user space is 128 TiB.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ExecutorPool, WasmImage, type Reactor } from "../src/sandbox/executor-pool.js";
import type { BenchContext, BenchSection } from "./types.js";

const GOAL_KIB = 100;

function vmSize(): number {
  const m = /VmSize:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

function settle(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Memories one process can hold, measured in a child so that exhausting the address space harms nothing. */
function memoryCeiling(): { count: number; vmPerMemoryGiB: number; error: string } {
  const script = `
    const fs = require("node:fs");
    const vm = () => Number(/VmSize:\\s+(\\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
    const v0 = vm(); const mems = []; let error = "";
    try { for (let i = 0; i < 1_000_000; i++) mems.push(new WebAssembly.Memory({ initial: 1, maximum: 1 })); }
    catch (e) { error = e.message; }
    console.log(JSON.stringify({ count: mems.length, vmPerMemoryGiB: (vm() - v0) / mems.length / 2 ** 30, error }));`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  try {
    return JSON.parse(r.stdout.trim()) as { count: number; vmPerMemoryGiB: number; error: string };
  } catch {
    return { count: Number.NaN, vmPerMemoryGiB: Number.NaN, error: r.stderr.slice(0, 200) };
  }
}

export const nodeFlags = ["--expose-gc"];

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const target = ctx.quick ? 2000 : 10_000;
  const pool = new ExecutorPool({ size: 2 });
  const image = new WasmImage(new Uint8Array(readFileSync(join(ctx.root, "test/fixtures/c-sandbox/counter.wasm"))));
  const reactors: Reactor[] = [];
  let error = "";
  try {
    // Warm up: executors started, module compiled and sent, allocator primed.
    const warm = await Promise.all(Array.from({ length: 50 }, () => pool.reactor(image, { stdout: "null", stderr: "null" })));
    await Promise.all(warm.map((r) => r.close()));
    settle();
    await new Promise((r) => setTimeout(r, 200));
    const rss0 = process.memoryUsage.rss();
    const vm0 = vmSize();
    const t0 = performance.now();
    try {
      for (let i = 0; i < target; i += 100) {
        const batch = await Promise.all(Array.from({ length: Math.min(100, target - i) }, () => pool.reactor(image, { stdout: "null", stderr: "null" })));
        reactors.push(...batch);
        if (i % 2000 === 0) ctx.log(`density: ${reactors.length} live instances`);
      }
    } catch (e) {
      error = (e as Error).message;
    }
    const createMs = performance.now() - t0;
    settle();
    await new Promise((r) => setTimeout(r, 200));
    const held = reactors.length;
    const rss1 = process.memoryUsage.rss();
    const vm1 = vmSize();
    // They are live: every one answers (and this touches one page of each memory).
    let sum = 0;
    for (let i = 0; i < held; i += Math.max(1, Math.floor(held / 500))) sum += Number((await reactors[i]!.call("inc")).value);
    const perInstanceKiB = (rss1 - rss0) / held / 1024;
    const vmPerInstanceGiB = (vm1 - vm0) / held / 2 ** 30;
    const ceiling = memoryCeiling();
    const stats = await pool.executorStats();
    return {
      title: "sandbox: density of idle reactor instances",
      rows: [
        { name: `live reactor instances held (target ${target})`, metric: "count", unit: "instances", ours: held, baselines: {}, better: "higher", goal: `>= ${target}`, pass: held >= target },
        { name: "RSS per idle instance beyond its linear memory", metric: "mean", unit: "KiB", ours: perInstanceKiB, baselines: {}, goal: `<= ${GOAL_KIB} KiB`, pass: perInstanceKiB <= GOAL_KIB },
        { name: "virtual address space per instance", metric: "mean", unit: "GiB", ours: vmPerInstanceGiB, baselines: {} },
        { name: "instance start in the pool (kernel + instantiate + _initialize)", metric: "mean", unit: "µs", ours: (createMs * 1000) / held, baselines: {} },
        { name: "ceiling: live wasm memories in one process", metric: "count", unit: "memories", ours: ceiling.count, baselines: {}, better: "higher" },
      ],
      notes: [
        `Instances are spread over ${stats.length} executors (${stats.map((s) => `${s.instances}`).join(" + ")}); each has its own kernel (fd table, stdio, counters) and WebAssembly.Instance with a 1-page memory; none has run guest code since _initialize, so their linear memory is untouched (not resident).`,
        `RSS is the whole process (all executors), measured after a GC, minus the RSS before the instances were made. ${error ? `Stopped early: ${error}.` : ""}`,
        `Ceiling: a child process allocating 1-page memories until V8 refuses: ${ceiling.count} at ${ceiling.vmPerMemoryGiB.toFixed(2)} GiB of reserved address space each (${ceiling.error}). With Node 20's trap handler every 32-bit memory reserves 10 GiB regardless of its maximum, so one process holds at most ~13,000 live instances; beyond that, spread instances over processes (the process tier).`,
        `Sanity: ${Math.min(500, held)} instances answered inc() (sum ${sum}).`,
      ],
    };
  } finally {
    await Promise.all(reactors.map((r) => r.close()));
    await pool.close();
  }
}
