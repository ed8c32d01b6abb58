/**
 * The one limits vocabulary: the limits of one instance, as the manifest's
 * `[limits]`, `uniwasm run`'s flags, the control-plane API, the store, the
 * manager, the sandbox and the kernel all name them. One type (`Limits`, every
 * field optional: what someone set), one resolved form (`ResolvedLimits`,
 * every field set: what an instance runs with), one `resolveLimits`, and one
 * grammar for the values people write (src/units.ts: binary sizes, durations).
 * A leaf module: every layer may import it.
 *
 * | field            | default (run) | manifest     | enforced by                                                    | reason              |
 * | ---------------- | ------------- | ------------ | -------------------------------------------------------------- | ------------------- |
 * | maxMemoryBytes   | 256 MiB       | `memory`     | the module's memory maximum is rewritten (limitMemory); an      | `memory_limit`      |
 * |                  |               |              | imported memory is created with it. `memory.grow` past it       |                     |
 * |                  |               |              | returns -1 as the spec says; the instance ends with the reason  |                     |
 * |                  |               |              | only when it then fails (trap or non-zero exit) at the ceiling. |                     |
 * | maxTableElements | 1 000 000     |              | every table's maximum is rewritten so that all of them together | `memory_limit`      |
 * |                  |               |              | stay within it (limitTables); `table.grow` past a maximum       |                     |
 * |                  |               |              | returns -1, as for memory. Tables live outside linear memory    |                     |
 * |                  |               |              | (~28 host bytes per funcref element), so they have their own    |                     |
 * |                  |               |              | budget rather than a share of maxMemoryBytes.                   |                     |
 * | fuel             | none (null)   | `fuel`       | instrumentFuel: a counter charged per metered block; the same   | `fuel_exhausted`    |
 * |                  |               |              | input always stops at the same instruction.                     |                     |
 * | timeoutMs        | 30 000 ms     | `timeout`    | the executor (worker thread) running the guest is terminated   | `deadline_exceeded` |
 * |                  |               |              | at the deadline and replaced (inline: a watchdog).              |                     |
 * | stackSizeMb      | 4 (MiB)       |              | the executor's V8 stack (`resourceLimits.stackSizeMb`).         | `stack_exhausted`   |
 * | stdoutBytes      | 64 MiB        | `stdout`     | the kernel's stdout writer.                                     | `output_limit`      |
 * | stderrBytes      | 64 MiB        | `stderr`     | the kernel's stderr writer.                                     | `output_limit`      |
 * | openFiles        | 1024          | `open_files` | the kernel's descriptor table (stdio and preopens included).    | `fd_limit`          |
 * | memDirBytes      | 64 MiB        |              | the kernel's MemoryBudget: all in-memory directories' contents, | (errno ENOSPC)      |
 * |                  |               |              | entries and links together; the call past it fails with ENOSPC. |                     |
 * | maxBodyBytes     | 1 MiB         |              | the node's gateway, before the guest runs (HTTP apps; a run     | (HTTP 413)          |
 * |                  |               |              | has no request body).                                           |                     |
 * | tier             | isolate       | `tier`       | whoever picks the executor pool (sandbox/tiers): the wall       |                     |
 * |                  |               |              | around the executor, not a budget; a pool does not apply it.    |                     |
 *
 * In TypeScript `Infinity` means unlimited (`null` for fuel: not metered);
 * `undefined` means the default. In JSON (the API, the store) a size or a
 * duration may also be a string in the one grammar ("16MiB", "5s"), and
 * `null` means unlimited, which is what JSON.stringify writes for Infinity.
 *
 * To add a limit: a field in `Limits` and `ResolvedLimits`, its default in
 * DEFAULT_LIMITS, its entry in LIMIT_FIELDS (its kind, range, and manifest key
 * if a manifest may set it: the manifest then parses it in image/manifest.ts)
 * and its line in resolveLimits (the compiler asks for it); parseLimits and
 * the API's schema read the table, and docs/limits.md must name it (a test checks).
 */
import { formatDuration, formatSize, parseDuration, parseSize, UnitError } from "./units.js";

/** Where an executor lives, weakest wall first (src/sandbox/tiers/tier.ts). */
export const TIERS = ["isolate", "process", "gvisor"] as const;
export type Tier = (typeof TIERS)[number];

export function isTier(s: unknown): s is Tier {
  return (TIERS as readonly unknown[]).includes(s);
}

/** Limits someone set: every field optional (undefined: the default). */
export interface Limits {
  /** Most bytes of linear memory, rounded down to 64 KiB pages. */
  maxMemoryBytes?: number;
  /**
   * Most table elements, all of the instance's tables together (their
   * minima plus whatever `table.grow` adds). Each funcref element costs the
   * host ~28 bytes outside linear memory.
   */
  maxTableElements?: number;
  /**
   * Instruction budget (one unit per non-structural wasm instruction). `null`:
   * not metered, and the module is compiled without instrumentation.
   */
  fuel?: bigint | number | null;
  /** Wall-clock limit of one run or reactor call, in ms. */
  timeoutMs?: number;
  /** V8 stack of the executor running the guest, in MiB (deep recursion -> `stack_exhausted`). */
  stackSizeMb?: number;
  /** Most bytes a guest may write to stdout (0: none). */
  stdoutBytes?: number;
  /** Most bytes a guest may write to stderr (0: none). */
  stderrBytes?: number;
  /** Most descriptors open at once, stdio and preopens included. */
  openFiles?: number;
  /** Most bytes all in-memory directories of the instance hold on the host (ENOSPC past it). */
  memDirBytes?: number;
  /** Largest HTTP request body the node's gateway hands to the app (413 past it). */
  maxBodyBytes?: number;
  /**
   * The wall around the executor that runs the guest (sandbox/tiers/tier.ts):
   * "isolate" (a worker thread of this process), "process" (a child process
   * under bubblewrap with a seccomp allow-list) or "gvisor". Not applied by a
   * pool (its launcher is its tier) but by whoever picks the pool:
   * `uniwasm run`/`call` start one on it.
   */
  tier?: Tier;
}

/** Limits with every default applied and checked: what an instance runs with. JSON-safe but for Infinity (null in JSON). */
export interface ResolvedLimits {
  maxMemoryBytes: number;
  maxTableElements: number;
  /** A safe integer, or null: not metered. */
  fuel: number | null;
  timeoutMs: number;
  stackSizeMb: number;
  stdoutBytes: number;
  stderrBytes: number;
  openFiles: number;
  memDirBytes: number;
  maxBodyBytes: number;
  tier: Tier;
}

export type LimitName = keyof ResolvedLimits;

/**
 * How each limit is written and checked.
 * - size: bytes, or a string in the size grammar ("64MiB"); Infinity allowed unless `finite`.
 * - duration: ms, or a string in the duration grammar ("5s"); Infinity allowed.
 * - count: an integer (a string of digits is accepted in JSON); Infinity allowed unless `finite`.
 * - fuel: an integer from 0 to 2^53-1, or null (not metered).
 * - tier: one of TIERS.
 */
export type LimitKind = "size" | "duration" | "count" | "fuel" | "tier";

export interface LimitField {
  readonly kind: LimitKind;
  /** Smallest value accepted. */
  readonly min: number;
  /** Largest value accepted, whatever the ceilings (Infinity: none). */
  readonly max: number;
  /** Infinity (unlimited) is refused. */
  readonly finite: boolean;
  /** Whole numbers only (a count that is not is refused; a size is rounded down). */
  readonly floor: boolean;
  /** The manifest's `[limits]` key, when a manifest may set it. */
  readonly manifest: string | undefined;
}

/** Every entry with every property (one object shape: checking a limit is on every run's path). */
function field(f: Pick<LimitField, "kind" | "min"> & Partial<LimitField>): LimitField {
  return Object.freeze({ kind: f.kind, min: f.min, max: f.max ?? Infinity, finite: f.finite ?? false, floor: f.floor ?? false, manifest: f.manifest });
}

export const WASM_PAGE = 65536;
/** 65536 pages: the whole 32-bit address space. */
export const MAX_WASM32_PAGES = 65536;
/**
 * Highest maxTableElements accepted. V8 allows 10,000,000 per table, but one
 * table.grow to that size allocates its element arrays in one piece, and a
 * worker may overshoot its V8 heap limit by only 16 MiB before V8 aborts the
 * whole process instead of ending the worker (measured: 1,000,000 elements,
 * two 8 MB arrays, end the executor cleanly at its limit; 4,000,000 abort).
 */
export const MAX_TABLE_ELEMENTS = 1_000_000;

/**
 * The range a person may write for a limit, in a manifest's `[limits]` or on the command line
 * (`uniwasm run --max-memory ...`): one table for both. (A deploy request may also ask for
 * "unlimited", `null`, where the node allows it: LIMIT_FIELDS and the node's ceilings say.)
 */
export const WRITTEN_RANGES = Object.freeze({
  maxMemoryBytes: { min: WASM_PAGE, max: 4 * 1024 ** 3 },
  maxTableElements: { min: 0, max: MAX_TABLE_ELEMENTS },
  fuel: { min: 0, max: Number.MAX_SAFE_INTEGER },
  timeoutMs: { min: 1, max: 24 * 3_600_000 },
  stackSizeMb: { min: 1, max: 256 },
  stdoutBytes: { min: 0, max: 1024 ** 3 },
  stderrBytes: { min: 0, max: 1024 ** 3 },
  openFiles: { min: 1, max: 65536 },
} as const);

export const LIMIT_FIELDS: Readonly<Record<LimitName, LimitField>> = Object.freeze({
  maxMemoryBytes: field({ kind: "size", min: WASM_PAGE, manifest: "memory" }),
  maxTableElements: field({ kind: "count", min: 0, max: MAX_TABLE_ELEMENTS, finite: true, floor: true }),
  fuel: field({ kind: "fuel", min: 0, max: Number.MAX_SAFE_INTEGER, manifest: "fuel" }),
  timeoutMs: field({ kind: "duration", min: 1, manifest: "timeout" }),
  stackSizeMb: field({ kind: "count", min: 1, finite: true }),
  stdoutBytes: field({ kind: "size", min: 0, manifest: "stdout" }),
  stderrBytes: field({ kind: "size", min: 0, manifest: "stderr" }),
  openFiles: field({ kind: "count", min: 1, floor: true, manifest: "open_files" }),
  memDirBytes: field({ kind: "size", min: 1, floor: true }),
  maxBodyBytes: field({ kind: "size", min: 0, floor: true }),
  tier: field({ kind: "tier", min: 0, manifest: "tier" }),
});

export const LIMIT_NAMES = Object.keys(LIMIT_FIELDS) as LimitName[];

/** The defaults of a run (`uniwasm run`, the library, an engine without options). */
export const DEFAULT_LIMITS: Readonly<ResolvedLimits> = Object.freeze({
  maxMemoryBytes: 256 * 1024 * 1024,
  maxTableElements: 1_000_000,
  fuel: null,
  timeoutMs: 30_000,
  stackSizeMb: 4,
  stdoutBytes: 64 * 1024 * 1024,
  stderrBytes: 64 * 1024 * 1024,
  openFiles: 1024,
  memDirBytes: 64 * 1024 * 1024,
  maxBodyBytes: 1024 * 1024,
  tier: "isolate",
});

/** A limit someone got wrong; the message names the limit, the value and what is accepted. */
export class LimitOptionError extends RangeError {
  constructor(
    /** The limit's name (or the unknown name given). */
    readonly option: LimitName | string,
    /** What is wrong, without the name ("must be ..., got ..."). */
    readonly detail: string,
  ) {
    super(`limit ${option}: ${detail}`);
    this.name = "LimitOptionError";
  }
}

/** Wasm pages of linear memory the limit allows (at most the whole 32-bit space). */
export function memoryPages(limits: Pick<ResolvedLimits, "maxMemoryBytes">): number {
  return Math.floor(Math.min(limits.maxMemoryBytes, MAX_WASM32_PAGES * WASM_PAGE) / WASM_PAGE);
}

/** A value of `name` for messages: "16 MiB", "5s", "unlimited". */
export function formatLimit(name: LimitName, value: number | null | string): string {
  if (typeof value === "string") return value;
  if (value === null) return "unmetered";
  if (!Number.isFinite(value)) return "unlimited";
  const kind = LIMIT_FIELDS[name].kind;
  return kind === "size" ? formatSize(value) : kind === "duration" ? formatDuration(value) : String(value);
}

function refuseNumber(name: LimitName, value: unknown): never {
  const f = LIMIT_FIELDS[name];
  const max = f.max;
  const range = `${f.min} to ${!f.finite && max === Infinity ? "Infinity (unlimited)" : formatLimit(name, max)}`;
  throw new LimitOptionError(name, `must be ${f.kind === "count" ? "an integer" : "a number"} from ${range}, got ${String(value)}`);
}

// On every run's path (an engine resolves each run's limits): messages are built only on failure.
function checkNumber(name: LimitName, f: LimitField, value: unknown, ceiling: number | null | undefined): number {
  const max = f.max;
  const allowInfinity = !f.finite && max === Infinity;
  if (typeof value !== "number" || Number.isNaN(value) || value < f.min || value > max || (!allowInfinity && !Number.isFinite(value))) refuseNumber(name, value);
  if (f.floor && f.kind === "count" && !Number.isInteger(value) && Number.isFinite(value)) refuseNumber(name, value);
  const n = value as number;
  if (ceiling !== undefined && ceiling !== null && n > ceiling) {
    throw new LimitOptionError(name, `${formatLimit(name, n)} is above the most allowed here, ${formatLimit(name, ceiling)}`);
  }
  return f.floor && Number.isFinite(n) ? Math.floor(n) : n;
}

function checkFuel(value: unknown, ceiling: number | bigint | null | undefined): number | null {
  if (value === null) {
    if (ceiling !== undefined && ceiling !== null) throw new LimitOptionError("fuel", `unmetered runs are not allowed here; at most ${ceiling} instructions`);
    return null;
  }
  const max = LIMIT_FIELDS.fuel.max;
  const n = typeof value === "bigint" && value >= 0n && value <= BigInt(max) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new LimitOptionError("fuel", `must be an integer from 0 to ${max} (2^53-1), or null for none, got ${String(value)}`);
  }
  if (ceiling !== undefined && ceiling !== null && n > Number(ceiling)) throw new LimitOptionError("fuel", `${n} is above the most allowed here, ${ceiling}`);
  return n;
}

const NO_CEILINGS: Limits = {};

/**
 * Complete limits objects already checked, each its own resolution (every field set and valid):
 * resolving one again returns it as is. A resolved limits object is read-only by convention
 * (change a copy: `{ ...limits, timeoutMs }`).
 */
const CHECKED = new WeakSet<object>();

/** A tier ceiling is the strongest wall allowed here. */
function checkTier(value: unknown, ceiling: Tier | undefined): Tier {
  if (!isTier(value)) throw new LimitOptionError("tier", `must be one of ${TIERS.join(", ")}, got ${JSON.stringify(value)}`);
  if (ceiling !== undefined && TIERS.indexOf(value) > TIERS.indexOf(ceiling)) throw new LimitOptionError("tier", `${value} is not available here (at most ${ceiling})`);
  return value;
}

/**
 * Every limit: the one given, else the default (`defaults`); each given one
 * checked against its field's range and against `ceilings` (a ceiling is a
 * most allowed value, e.g. a node's bound on what an app may ask for; a fuel
 * ceiling also refuses unmetered runs). Throws LimitOptionError naming the
 * first bad limit; an unknown name is refused too.
 */
export function resolveLimits(limits: Limits = {}, defaults: Readonly<ResolvedLimits> = DEFAULT_LIMITS, ceilings: Limits = NO_CEILINGS): ResolvedLimits {
  // Every run resolves its limits; a node passes the same resolved object for every request of an app.
  if (ceilings === NO_CEILINGS && CHECKED.has(limits)) return limits as ResolvedLimits;
  // Field by field rather than a loop over LIMIT_FIELDS: named property access keeps this under a
  // microsecond (a keyed loop took ~3 µs).
  const l = limits;
  const c = ceilings;
  const F = LIMIT_FIELDS;
  const out: ResolvedLimits = {
    maxMemoryBytes: l.maxMemoryBytes === undefined ? defaults.maxMemoryBytes : checkNumber("maxMemoryBytes", F.maxMemoryBytes, l.maxMemoryBytes, c.maxMemoryBytes),
    maxTableElements: l.maxTableElements === undefined ? defaults.maxTableElements : checkNumber("maxTableElements", F.maxTableElements, l.maxTableElements, c.maxTableElements),
    fuel: l.fuel === undefined ? defaults.fuel : checkFuel(l.fuel, c.fuel),
    timeoutMs: l.timeoutMs === undefined ? defaults.timeoutMs : checkNumber("timeoutMs", F.timeoutMs, l.timeoutMs, c.timeoutMs),
    stackSizeMb: l.stackSizeMb === undefined ? defaults.stackSizeMb : checkNumber("stackSizeMb", F.stackSizeMb, l.stackSizeMb, c.stackSizeMb),
    stdoutBytes: l.stdoutBytes === undefined ? defaults.stdoutBytes : checkNumber("stdoutBytes", F.stdoutBytes, l.stdoutBytes, c.stdoutBytes),
    stderrBytes: l.stderrBytes === undefined ? defaults.stderrBytes : checkNumber("stderrBytes", F.stderrBytes, l.stderrBytes, c.stderrBytes),
    openFiles: l.openFiles === undefined ? defaults.openFiles : checkNumber("openFiles", F.openFiles, l.openFiles, c.openFiles),
    memDirBytes: l.memDirBytes === undefined ? defaults.memDirBytes : checkNumber("memDirBytes", F.memDirBytes, l.memDirBytes, c.memDirBytes),
    maxBodyBytes: l.maxBodyBytes === undefined ? defaults.maxBodyBytes : checkNumber("maxBodyBytes", F.maxBodyBytes, l.maxBodyBytes, c.maxBodyBytes),
    tier: l.tier === undefined ? defaults.tier : checkTier(l.tier, c.tier),
  };
  // A name that is not a limit is refused (an old or misspelt name must never do nothing).
  for (const k in l) if (!(k in out) && (l as Record<string, unknown>)[k] !== undefined) throw new LimitOptionError(k, `is not a limit (known: ${LIMIT_NAMES.join(", ")})`);
  if (ceilings === NO_CEILINGS && LIMIT_NAMES.every((n) => l[n] === out[n])) CHECKED.add(l);
  return out;
}

/**
 * Limits as people and JSON write them (a deploy request, a stored record):
 * each value a number in the field's unit, a string in the one grammar
 * ("64MiB", "5s", "1_000"), or null for unlimited (fuel: not metered). Checks
 * names and grammar only (resolveLimits checks ranges). Throws
 * LimitOptionError naming the field.
 */
export function parseLimits(input: unknown): Limits {
  if (input === undefined || input === null) return {};
  if (typeof input !== "object" || Array.isArray(input)) throw new LimitOptionError("limits", `must be an object of limits (${LIMIT_NAMES.join(", ")})`);
  const out: Limits = {};
  for (const [k, v] of Object.entries(input as Record<string, unknown>)) {
    if (!(k in LIMIT_FIELDS)) throw new LimitOptionError(k, `is not a limit (known: ${LIMIT_NAMES.join(", ")})`);
    if (v === undefined) continue;
    const name = k as LimitName;
    const kind = LIMIT_FIELDS[name].kind;
    let value: number | bigint | null;
    if (kind === "tier") {
      if (!isTier(v)) throw new LimitOptionError(name, `must be one of ${TIERS.join(", ")}, got ${JSON.stringify(v)}`);
      out.tier = v;
      continue;
    }
    if (v === null) value = kind === "fuel" ? null : Infinity;
    else if (typeof v === "number" || typeof v === "bigint") value = v;
    else if (typeof v === "string") value = parseValue(name, kind, v);
    else throw new LimitOptionError(name, `must be a number, a string such as ${example(kind)} or null, got ${typeof v}`);
    (out as Record<string, unknown>)[name] = value;
  }
  return out;
}

function example(kind: LimitKind): string {
  return kind === "size" ? '"16MiB"' : kind === "duration" ? '"5s"' : '"1_000"';
}

function parseValue(name: LimitName, kind: Exclude<LimitKind, "tier">, text: string): number {
  try {
    if (kind === "size") return parseSize(text);
    if (kind === "duration") return parseDuration(text);
  } catch (err) {
    if (err instanceof UnitError) throw new LimitOptionError(name, `is ${err.message}`);
    throw err;
  }
  const t = text.trim();
  if (!/^\d[\d_]*$/.test(t) || t.endsWith("_")) throw new LimitOptionError(name, `${JSON.stringify(text)} is not an integer`);
  return Number(t.replace(/_/g, ""));
}
