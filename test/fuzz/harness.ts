/**
 * The fuzz harness, shared by the short run in `npm test` (fuzz.test.ts) and
 * the long run behind `npm run fuzz` (long.ts). Two targets:
 *
 * 1. Mutated modules (bit flips, truncations, section splices of the fixture
 *    modules): the checked reader, every rewrite the sandbox applies and the
 *    compiler must either accept or fail with a WasmError; a rewrite must
 *    never turn a module V8 accepts into one it rejects; modules that compile
 *    are run in the pool under tight limits and must end with a named reason,
 *    never a host fault.
 * 2. A generated guest calling every host function with random arguments over
 *    random memory: every call must come back (errno), the run must end by
 *    itself (or at a limit), with no host exception, and nothing may appear
 *    outside the preopened host directory.
 *
 * A failure is reported with its seed; the same seed reproduces it.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import type { EndReason } from "../../src/sandbox/limits.js";
import { exportMutableGlobals } from "../../src/wasm/export-globals.js";
import { defineImportedMemory, importDefinedMemory, linkView } from "../../src/wasm/memory-import.js";
import { hookGrow } from "../../src/wasm/grow-hook.js";
import { prepareModule } from "../../src/wasm/prepare.js";
import { WasmError } from "../../src/wasm/errors.js";
import { instrumentFuel, limitMemory, limitTables } from "../../src/wasm/rewrite.js";
import { checkModule } from "../../src/wasm/validate.js";
import { hostcallGuest } from "./hostcall-guest.js";
import { mutate } from "./mutate.js";
import { Prng } from "./prng.js";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));

export interface FuzzFailure {
  target: "module" | "hostcall";
  seed: number;
  problem: string;
  /** What was done (mutations, or the calls made). */
  trail: string;
}

export interface FuzzReport {
  cases: number;
  /** How often each end reason or check outcome occurred. */
  outcomes: Record<string, number>;
  failures: FuzzFailure[];
}

function count(r: FuzzReport, key: string): void {
  r.outcomes[key] = (r.outcomes[key] ?? 0) + 1;
}

/** The fixture modules mutations start from (c-sandbox, wat, and some conformance programs). */
export function corpus(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const dir of ["test/fixtures/c-sandbox", "test/fixtures/wat"]) {
    for (const f of safeList(join(REPO, dir))) if (f.endsWith(".wasm")) out.push(readFileSync(join(REPO, dir, f)));
  }
  const conf = safeList(join(REPO, "test/fixtures/conformance")).filter((f) => f.endsWith(".wasm")).sort();
  for (let i = 0; i < conf.length; i += Math.max(1, Math.floor(conf.length / 12))) out.push(readFileSync(join(REPO, "test/fixtures/conformance", conf[i]!)));
  return out;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Reasons a mutated module may end with: anything named, never a host fault. */
const MODULE_OK: ReadonlySet<EndReason> = new Set<EndReason>([
  "exit", "trap", "link_error", "invalid_module", "memory_limit", "fuel_exhausted", "deadline_exceeded", "stack_exhausted", "output_limit", "fd_limit",
]);

function compiles(bytes: Uint8Array): boolean {
  try {
    new WebAssembly.Module(bytes);
    return true;
  } catch {
    return false;
  }
}

/** One mutated-module case; returns the failure or undefined. */
export async function moduleCase(pool: ExecutorPool, seed: number, base: readonly Uint8Array[], report: FuzzReport, run: boolean): Promise<FuzzFailure | undefined> {
  const rng = new Prng(seed);
  const original = rng.pick(base);
  const { bytes, kinds } = mutate(rng, original, rng.pick(base));
  const trail = `mutations ${kinds.join(",")} of a ${original.length}-byte module`;
  const fail = (problem: string): FuzzFailure => ({ target: "module", seed, problem, trail });
  let info;
  try {
    info = checkModule(bytes);
  } catch (err) {
    if (!(err instanceof WasmError)) return fail(`checkModule threw ${(err as Error)?.name}: ${(err as Error)?.message} instead of a WasmError`);
    count(report, `rejected:${err.code}`);
    return undefined;
  }
  const valid = compiles(bytes);
  count(report, valid ? "compiles" : "checked-but-v8-rejects");
  const rewrites: [string, () => Uint8Array][] = [
    ["limitMemory", () => limitMemory(bytes, 256, info).bytes],
    ["instrumentFuel", () => instrumentFuel(bytes, {}, info).bytes],
    ["exportMutableGlobals", () => exportMutableGlobals(bytes, info).bytes],
    ["defineImportedMemory", () => defineImportedMemory(bytes, info).bytes],
    ["importDefinedMemory", () => importDefinedMemory(limitMemory(bytes, 256, info).bytes)?.bytes ?? bytes],
    ["linkView", () => linkView(bytes, info)],
    ["hookGrow", () => hookGrow(bytes, info).bytes],
    ["limitTables", () => limitTables(bytes, 1000, info).bytes],
    ["prepareModule", () => prepareModule(bytes, { maxMemoryPages: 256, maxTableElements: 100_000, fuel: true, snapshot: true }).bytes],
  ];
  for (const [name, rewrite] of rewrites) {
    let out: Uint8Array;
    try {
      out = rewrite();
    } catch (err) {
      if (err instanceof WasmError || err instanceof RangeError) continue; // refused with a reason
      if (name === "exportMutableGlobals" && err instanceof Error && /already exports/.test(err.message)) continue;
      return fail(`${name} threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    }
    if (valid && !compiles(out)) return fail(`${name} turned a module V8 accepts into one it rejects`);
  }
  if (!run || !valid) return undefined;
  let result;
  try {
    result = await pool.run(bytes, { args: ["fuzz"], limits: { timeoutMs: 500, fuel: 20_000_000, maxMemoryBytes: 16 << 20, stdoutBytes: 1 << 16, stderrBytes: 1 << 16 } });
  } catch (err) {
    return fail(`pool.run threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
  }
  count(report, `run:${result.reason}`);
  if (!MODULE_OK.has(result.reason)) return fail(`run ended with ${result.reason}: ${result.message}${result.hostFault ? ` (host fault: ${result.hostFault})` : ""}`);
  return undefined;
}

/** Reasons a random host-call guest may end with. */
const HOSTCALL_OK: ReadonlySet<EndReason> = new Set<EndReason>(["exit", "deadline_exceeded", "output_limit", "fd_limit"]);

/** One random host-call case. */
export async function hostcallCase(pool: ExecutorPool, seed: number, report: FuzzReport, calls = 200): Promise<FuzzFailure | undefined> {
  const rng = new Prng(seed);
  const guest = hostcallGuest(rng, calls);
  const root = mkdtempSync(join(tmpdir(), "uniwasm-fuzz-"));
  const jail = join(root, "jail");
  mkdirSync(jail);
  writeFileSync(join(jail, "file"), "contents");
  mkdirSync(join(jail, "dir"));
  const trail = guest.calls.join("\n");
  const fail = (problem: string): FuzzFailure => ({ target: "hostcall", seed, problem, trail });
  try {
    const result = await pool.run(guest.bytes, {
      args: ["fuzz", "a", "b"],
      env: { FUZZ: "1" },
      stdin: rng.bytes(256),
      preopens: [
        { guest: "/mem", memory: { "a.txt": "hello", "sub/b.txt": "world" } },
        { guest: "/host", host: jail },
        { guest: "/ro", memory: { "c.txt": "read only" }, readonly: true },
      ],
      limits: { timeoutMs: 1000, stdoutBytes: 1 << 16, stderrBytes: 1 << 16, openFiles: 64 },
    });
    count(report, `hostcall:${result.reason}`);
    if (!HOSTCALL_OK.has(result.reason)) return fail(`ended with ${result.reason}: ${result.message}${result.hostFault ? ` (host fault: ${result.hostFault})` : ""}`);
    const escaped = readdirSync(root).filter((f) => f !== "jail");
    if (escaped.length > 0) return fail(`files appeared outside the preopened directory: ${escaped.join(", ")}`);
    return undefined;
  } catch (err) {
    return fail(`pool.run threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export interface FuzzPlan {
  firstSeed: number;
  moduleCases: number;
  /** Run every Nth compiling mutant in the pool (1 = all). */
  runEvery: number;
  hostcallCases: number;
  hostcallCalls?: number;
  /** Stop early at this time (ms since epoch). */
  until?: number;
  onProgress?: (done: number, report: FuzzReport) => void;
}

export async function fuzz(pool: ExecutorPool, plan: FuzzPlan): Promise<FuzzReport> {
  const report: FuzzReport = { cases: 0, outcomes: {}, failures: [] };
  const base = corpus();
  for (let i = 0; i < plan.moduleCases; i++) {
    if (plan.until && Date.now() > plan.until) break;
    const f = await moduleCase(pool, plan.firstSeed + i, base, report, i % plan.runEvery === 0);
    report.cases++;
    if (f) report.failures.push(f);
    plan.onProgress?.(report.cases, report);
  }
  for (let i = 0; i < plan.hostcallCases; i++) {
    if (plan.until && Date.now() > plan.until) break;
    const f = await hostcallCase(pool, plan.firstSeed + i, report, plan.hostcallCalls);
    report.cases++;
    if (f) report.failures.push(f);
    plan.onProgress?.(report.cases, report);
  }
  return report;
}
