/**
 * Fuel metering overhead on a compute kernel (issue 3, "Benchmark"): SHA-256
 * over N MiB (test/fixtures/c-sandbox/sha256.c, clang -O2 to wasm32-wasi),
 * run in the executor pool with and without fuel instrumentation, and the
 * same C compiled natively with gcc -O2 when gcc is present.
 *
 * Every side is timed as (run with N MiB) - (run with 0 MiB), so start-up
 * (instantiation, or exec of the native binary) cancels out and only the
 * compute is compared. Rounds are interleaved; medians reported.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutorPool, WasmImage } from "../src/sandbox/executor-pool.js";
import { summarize } from "./measure.js";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";

const FUEL_OVERHEAD_GOAL = 1.1;
const NATIVE_RATIO_GOAL = 1.3;

function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1e3;
}

function hasGcc(): boolean {
  return spawnSync("gcc", ["--version"], { stdio: "ignore" }).status === 0;
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const mib = ctx.quick ? 4 : 16;
  const rounds = ctx.quick ? 5 : 15;
  const src = join(ctx.root, "test/fixtures/c-sandbox/sha256.c");
  const image = new WasmImage(new Uint8Array(readFileSync(join(ctx.root, "test/fixtures/c-sandbox/sha256.wasm"))));
  const pool = new ExecutorPool({ size: 1 });
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-bench-"));
  let native: string | undefined;
  if (hasGcc()) {
    native = join(dir, "sha256");
    execFileSync("gcc", ["-O2", "-o", native, src]);
  }
  try {
    const wasm = async (n: number, fuel: boolean): Promise<{ us: number; digest: string; fuel?: bigint }> => {
      const r = await pool.run(image, { args: ["sha256", String(n)], limits: fuel ? { fuel: 1n << 62n } : {} });
      if (r.reason !== "exit") throw new Error(`sha256 ended with ${r.reason}: ${r.message}`);
      const out: { us: number; digest: string; fuel?: bigint } = { us: r.durationUs, digest: new TextDecoder().decode(r.stdout).trim() };
      if (r.fuelConsumed !== undefined) out.fuel = r.fuelConsumed;
      return out;
    };
    const nativeRun = (n: number): { us: number; digest: string } => {
      const t0 = nowUs();
      const out = execFileSync(native!, [String(n)], { encoding: "utf8" });
      return { us: nowUs() - t0, digest: out.trim() };
    };
    const plain: number[] = [];
    const metered: number[] = [];
    const nat: number[] = [];
    let fuelUsed = 0n;
    let digest = "";
    // One warm-up round (JIT tiers, module compiled and sent to the executor).
    for (let r = -1; r < rounds; r++) {
      const order = r % 2 === 0 ? ["plain", "metered", "native"] : ["native", "metered", "plain"];
      for (const which of order) {
        if (which === "native") {
          if (!native) continue;
          const full = nativeRun(mib);
          const empty = nativeRun(0);
          if (r >= 0) nat.push(full.us - empty.us);
          if (digest && full.digest !== digest) throw new Error("native and wasm digests differ");
          continue;
        }
        const isMetered = which === "metered";
        const full = await wasm(mib, isMetered);
        const empty = await wasm(0, isMetered);
        digest ||= full.digest;
        if (full.digest !== digest) throw new Error("metered and unmetered digests differ");
        if (isMetered) fuelUsed = full.fuel! - empty.fuel!;
        if (r >= 0) (isMetered ? metered : plain).push(full.us - empty.us);
      }
    }
    const p = summarize(plain).median;
    const m = summarize(metered).median;
    const rows: BenchRow[] = [];
    const overhead = m / p;
    rows.push({
      name: `SHA-256 of ${mib} MiB, fuel-metered vs unmetered`,
      metric: "median",
      unit: "ms",
      ours: m / 1000,
      baselines: { unmetered: p / 1000 },
      ratio: p / m,
      goal: `overhead <= ${Math.round((FUEL_OVERHEAD_GOAL - 1) * 100)}%`,
      pass: overhead <= FUEL_OVERHEAD_GOAL,
    });
    const notes = [
      `${rounds} interleaved rounds; each figure is (N MiB run) - (0 MiB run) inside the executor, so instantiation cancels out.`,
      `Fuel overhead: ${((overhead - 1) * 100).toFixed(1)}%; ${fuelUsed} instructions metered for ${mib} MiB (${(Number(fuelUsed) / (m / 1e6) / 1e9).toFixed(2)} G instructions/s).`,
      `Digest (all sides agree): ${digest}.`,
    ];
    if (native) {
      const n = summarize(nat).median;
      rows.push({
        name: `SHA-256 of ${mib} MiB, unmetered wasm vs native gcc -O2`,
        metric: "median",
        unit: "ms",
        ours: p / 1000,
        baselines: { "native gcc -O2": n / 1000 },
        ratio: n / p,
        goal: `<= ${NATIVE_RATIO_GOAL}x native`,
        pass: p / n <= NATIVE_RATIO_GOAL,
      });
      rows.push({
        name: `SHA-256 of ${mib} MiB, metered wasm vs native gcc -O2`,
        metric: "median",
        unit: "ms",
        ours: m / 1000,
        baselines: { "native gcc -O2": n / 1000 },
        ratio: n / m,
      });
      notes.push(`wasm / native: unmetered ${(p / n).toFixed(2)}x, metered ${(m / n).toFixed(2)}x.`);
    } else {
      notes.push("gcc not found: the native comparison was skipped (apt-get install gcc).");
    }
    return { title: "sandbox: fuel metering overhead and compute vs native", rows, notes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await pool.close();
  }
}
