/**
 * The benchmark driver behind `npm run bench`.
 *
 *   npm run bench                 every bench/*.bench.ts
 *   npm run bench -- kernel       only files whose name contains "kernel"
 *   npm run bench -- --quick      fewer rounds, for a smoke run
 *   npm run bench -- --list       list the benchmark files and exit
 *
 * Each benchmark file runs in its own child process (with the Node flags it
 * exports as `nodeFlags`), so that one file's heap, JIT state or crash cannot
 * skew or stop another. Its sections are printed as tables on stdout as soon
 * as the file is done; all sections go to bench/results/latest.json and to a
 * timestamped copy beside it. The exit status is 1 when a benchmark file
 * failed to run (goals missed are reported, not fatal: machines are noisy).
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchContext, BenchFile, BenchRow, BenchSection } from "./types.js";

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = resolve(HERE, "..", ".."); // the repository
const RESULTS = join(ROOT, "bench", "results");
const SUFFIX = ".bench.js";

interface Args {
  quick: boolean;
  list: boolean;
  filters: string[];
  /** Internal: run this one compiled file and report to the driver over IPC. */
  child?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, list: false, filters: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") args.quick = true;
    else if (a === "--child") args.child = argv[++i];
    else if (a === "--list") args.list = true;
    else if (a === "--help" || a === "-h") {
      process.stdout.write("usage: npm run bench -- [--quick] [--list] [NAME...]\n  NAME selects bench/NAME*.bench.ts files by substring (e.g. kernel, sandbox).\n");
      process.exit(0);
    } else if (a.startsWith("-")) {
      process.stderr.write(`bench: unknown option ${a} (known: --quick, --list, --help)\n`);
      process.exit(2);
    } else args.filters.push(a.toLowerCase());
  }
  return args;
}

/**
 * Benchmark files compiled next to this driver, selected by the filters.
 * A compiled file whose bench/NAME.bench.ts is gone is stale output and skipped.
 */
function discover(filters: readonly string[]): string[] {
  const names = readdirSync(HERE)
    .filter((f) => f.endsWith(SUFFIX) && existsSync(join(ROOT, "bench", `${f.slice(0, -".js".length)}.ts`)))
    .sort();
  return names.filter((f) => filters.length === 0 || filters.some((w) => f.slice(0, -SUFFIX.length).toLowerCase().includes(w)));
}

// ---- formatting ----

/** Four significant digits, no exponent for the magnitudes we print. */
function fmt(v: number | undefined): string {
  if (v === undefined) return "";
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  return v.toFixed(3);
}

function withUnit(v: number | undefined, unit: string): string {
  return v === undefined ? "—" : `${fmt(v)} ${unit}`;
}

/** One table: case, metric, ours, each baseline, ratio, goal, ok; numbers right-aligned. */
function formatSection(s: BenchSection): string {
  const labels: string[] = [];
  for (const r of s.rows) for (const l of Object.keys(r.baselines)) if (!labels.includes(l)) labels.push(l);
  const header = ["case", "metric", "ours", ...labels, "ratio", "goal", "ok"];
  const right = header.map((h) => h !== "case" && h !== "metric" && h !== "goal" && h !== "ok");
  const body = s.rows.map((r: BenchRow) => [
    r.name,
    r.metric,
    withUnit(r.ours, r.unit),
    ...labels.map((l) => withUnit(r.baselines[l], r.unit)),
    r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
    r.goal ?? "",
    r.pass === undefined ? "" : r.pass ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const out = [`## ${s.title}`, "", line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)];
  const ratioNote = "ratio: vs the best baseline in the row, oriented so that >= 1.00x means ours is as good or better (baseline/ours for times, ours/baseline for throughput)";
  for (const n of [ratioNote, ...(s.notes ?? [])]) out.push(`  * ${n}`);
  return out.join("\n") + "\n";
}

// ---- checking what a benchmark file returned ----

function checkSection(s: unknown, file: string): BenchSection {
  const bad = (what: string): never => {
    throw new Error(`${file}: run() returned a malformed section: ${what}`);
  };
  if (typeof s !== "object" || s === null) bad("not an object");
  const sec = s as BenchSection;
  if (typeof sec.title !== "string" || sec.title === "") bad("title must be a non-empty string");
  if (!Array.isArray(sec.rows)) bad("rows must be an array");
  sec.rows.forEach((r, i) => {
    if (typeof r.name !== "string" || typeof r.metric !== "string" || typeof r.unit !== "string") bad(`rows[${i}]: name, metric and unit must be strings`);
    if (typeof r.ours !== "number") bad(`rows[${i}] (${r.name}): ours must be a number`);
    if (typeof r.baselines !== "object" || r.baselines === null) bad(`rows[${i}] (${r.name}): baselines must be an object (may be empty)`);
  });
  return sec;
}

// ---- running one file, in its own process ----

interface FileResult {
  file: string;
  nodeFlags: string[];
  seconds: number;
  sections: BenchSection[];
  error?: string;
}

type ChildMessage = { sections: BenchSection[] } | { error: string };

function context(quick: boolean): BenchContext {
  return {
    quick,
    root: ROOT,
    guest: (name) => join(ROOT, "bench", "guests", name),
    log: (m) => process.stderr.write(`  ${m}\n`),
  };
}

/** In the child: runs one benchmark file and sends its sections to the driver. */
async function child(file: string, quick: boolean): Promise<void> {
  let msg: ChildMessage;
  try {
    const mod = (await import(pathToFileURL(join(HERE, file)).href)) as Partial<BenchFile>;
    if (typeof mod.run !== "function") throw new Error(`${file} exports no run(ctx) function`);
    const got = await mod.run(context(quick));
    msg = { sections: (Array.isArray(got) ? got : [got]).map((s) => checkSection(s, file)) };
  } catch (err) {
    msg = { error: (err as Error)?.stack ?? String(err) };
  }
  await new Promise<void>((done) => process.send!(msg, () => done()));
}

/** In the driver: runs a file in a child process with the flags it asks for. */
async function runFile(file: string, quick: boolean): Promise<FileResult> {
  const mod = (await import(pathToFileURL(join(HERE, file)).href)) as Partial<BenchFile>;
  const nodeFlags = [...(mod.nodeFlags ?? [])];
  const result: FileResult = { file: `bench/${basename(file, SUFFIX)}.bench.ts`, nodeFlags, seconds: 0, sections: [] };
  const t0 = performance.now();
  const proc = fork(fileURLToPath(import.meta.url), ["--child", file, ...(quick ? ["--quick"] : [])], {
    execArgv: nodeFlags,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let msg: ChildMessage | undefined;
  proc.on("message", (m) => (msg = m as ChildMessage));
  const [code, signal] = (await once(proc, "exit")) as [number | null, NodeJS.Signals | null];
  result.seconds = (performance.now() - t0) / 1e3;
  if (msg && "sections" in msg) result.sections = msg.sections;
  else result.error = msg?.error ?? `the benchmark process ended with ${signal ?? `exit code ${code}`} before reporting`;
  return result;
}

// ---- main ----

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.child) {
    await child(args.child, args.quick);
    return 0;
  }
  const files = discover(args.filters);
  if (args.list) {
    for (const f of discover([])) process.stdout.write(`${f.slice(0, -SUFFIX.length)}\n`);
    return 0;
  }
  if (files.length === 0) {
    process.stderr.write(`bench: no benchmark matches ${args.filters.join(", ")} (try --list)\n`);
    return 2;
  }

  const cpu = cpus()[0]?.model ?? "unknown";
  process.stdout.write(`# uniwasm benchmarks — node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} x ${cpu}${args.quick ? ", --quick" : ""}\n\n`);

  const results: FileResult[] = [];
  for (const file of files) {
    const name = basename(file, SUFFIX);
    process.stderr.write(`bench: ${name} ...\n`);
    const r = await runFile(file, args.quick);
    results.push(r);
    if (r.error) process.stderr.write(`bench: ${name} failed: ${r.error}\n`);
    for (const s of r.sections) process.stdout.write(formatSection(s) + "\n");
  }

  const rows = results.flatMap((r) => r.sections.flatMap((s) => s.rows));
  const withGoal = rows.filter((r) => r.pass !== undefined);
  const missed = withGoal.filter((r) => r.pass === false);
  const failed = results.filter((r) => r.error);
  process.stdout.write(`goals met: ${withGoal.length - missed.length} of ${withGoal.length}${missed.length ? ` (the rows marked NO are missed)` : ""}\n`);
  if (failed.length) process.stdout.write(`failed to run: ${failed.map((r) => r.file).join(", ")}\n`);

  const date = new Date();
  const report = {
    date: date.toISOString(),
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    cpu: { model: cpu, count: cpus().length },
    memoryBytes: totalmem(),
    quick: args.quick,
    filters: args.filters,
    files: results,
  };
  mkdirSync(RESULTS, { recursive: true });
  const json = JSON.stringify(report, null, 2) + "\n";
  const latest = join(RESULTS, "latest.json");
  writeFileSync(latest, json);
  writeFileSync(join(RESULTS, `${date.toISOString().replace(/[:.]/g, "-")}.json`), json);
  process.stderr.write(`bench: wrote ${latest}\n`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = await main();
