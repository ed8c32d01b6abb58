/**
 * Trap reports: a V8 wasm trap (RuntimeError, or RangeError on stack
 * overflow) becomes a one-line reason and a backtrace with function names
 * taken from the module's name section.
 *
 * V8 writes wasm frames as
 *   at mod.name (wasm://wasm/mod-8c5f3c7a:wasm-function[12]:0x1f3)
 *   at wasm://wasm/8c5f3c7a:wasm-function[12]:0x1f3
 * where 12 is the function index and 0x1f3 the byte offset in the module.
 * Only as many frames as Error.stackTraceLimit allows are recorded.
 */
import { isFuelExhausted } from "./fuel.js";
import { functionDisplayName, type ModuleInfo } from "./reader.js";
import { hex } from "./errors.js";
import { originalOffset, type OffsetMap } from "./rewrite.js";
import { readLineTable, type LineTable, type SourceLocation } from "./dwarf.js";
import type { CustomSection, ModuleInfo as Info } from "./reader.js";

export type TrapReason =
  | "unreachable"
  | "fuel_exhausted"
  | "stack_exhausted"
  | "memory_out_of_bounds"
  | "table_out_of_bounds"
  | "indirect_call_mismatch"
  | "divide_by_zero"
  | "integer_overflow"
  | "invalid_conversion"
  | "unaligned_atomic"
  | "null_reference"
  | "segment_out_of_bounds"
  /** Not a wasm trap: the guest broke the host's call ABI (src/sandbox/reactor-abi.ts). */
  | "abi_violation"
  /** Not a wasm trap: an error thrown by a host function (or anything else). */
  | "host_error";

export interface WasmFrame {
  /** Index in the function index space (imports included). */
  funcIndex: number;
  /** Name from the name section, else `func[N]`. */
  name: string;
  /** Byte offset of the instruction in the module, when V8 gave one. */
  offset: number | undefined;
  /** Source file and line, from the module's DWARF line table (built with -g). */
  source?: SourceLocation;
}

export interface TrapInfo {
  reason: TrapReason;
  /** One line for people: "integer divide by zero". */
  message: string;
  /** Innermost first. Only wasm frames; host (JS) frames are left out. */
  frames: WasmFrame[];
  /** The engine's message, unchanged. */
  engineMessage: string;
}

/** V8 trap messages (message-template.h, kWasmTrap*), newest wording first. */
const RUNTIME_TRAPS: [RegExp, TrapReason, string][] = [
  [/^unreachable$/, "unreachable", "unreachable executed"],
  [/^memory access out of bounds$/, "memory_out_of_bounds", "out of bounds memory access"],
  [/^(divide|remainder) by zero$/, "divide_by_zero", "integer divide by zero"],
  [/^divide result unrepresentable$/, "integer_overflow", "integer overflow"],
  [/^float unrepresentable in integer range$/, "invalid_conversion", "invalid conversion to integer"],
  [/^table index is out of bounds$|^invalid index into function table$|^table access out of bounds$/, "table_out_of_bounds", "undefined element: table index out of bounds"],
  [/signature mismatch$/, "indirect_call_mismatch", "indirect call to a null function or with the wrong signature"],
  [/^operation does not support unaligned accesses$/, "unaligned_atomic", "unaligned atomic access"],
  [/^dereferencing a null pointer$/, "null_reference", "null reference"],
  [/^(data|element) segment (out of bounds|has been dropped)$/, "segment_out_of_bounds", "out of bounds segment access"],
];

export interface DescribeTrapOptions {
  /** Module info for function names (the instrumented module keeps the same indices). */
  info?: ModuleInfo;
  /**
   * The instance that trapped, if fuel-instrumented: an `unreachable` with its
   * fuel global negative is reported as `fuel_exhausted`.
   */
  instance?: WebAssembly.Instance | WebAssembly.Exports;
  /** Export name of the fuel global, when not the default. */
  fuelExport?: string;
  /**
   * The instrumented module's offset map (FuelInstrumentation.offsetMap):
   * frame offsets are then given in the original module, as tools such as
   * wasm-objdump show it.
   */
  offsetMap?: OffsetMap;
}

/**
 * Classifies `error` (whatever was thrown out of a wasm call) and extracts its
 * wasm backtrace. Errors from another realm or that crossed a worker boundary
 * (plain objects with name, message and stack) are classified by name.
 */
export function describeTrap(error: unknown, opts: DescribeTrapOptions = {}): TrapInfo {
  const e = typeof error === "object" && error !== null ? (error as { name?: unknown; message?: unknown; stack?: unknown }) : undefined;
  const engineMessage = typeof e?.message === "string" ? e.message : String(error);
  const name = error instanceof WebAssembly.RuntimeError ? "RuntimeError" : typeof e?.name === "string" ? e.name : undefined;
  const stack = typeof e?.stack === "string" ? e.stack : "";
  const frames = parseWasmFrames(stack, opts.info);
  if (opts.offsetMap) {
    for (const f of frames) if (f.offset !== undefined) f.offset = originalOffset(opts.offsetMap, f.offset) ?? f.offset;
  }

  let reason: TrapReason = "host_error";
  let message = name !== undefined && e !== undefined ? `${name}: ${engineMessage}` : engineMessage;
  if (name === "RuntimeError") {
    const hit = RUNTIME_TRAPS.find(([re]) => re.test(engineMessage));
    if (hit) [, reason, message] = hit;
    else message = `wasm trap: ${engineMessage}`;
  } else if (name === "RangeError" && /call stack size exceeded/i.test(engineMessage)) {
    reason = "stack_exhausted";
    message = "call stack exhausted";
  }
  if (reason === "unreachable" && opts.instance !== undefined && isFuelExhausted(opts.instance, opts.fuelExport)) {
    reason = "fuel_exhausted";
    message = "fuel exhausted";
  }
  return { reason, message, frames, engineMessage };
}

const FRAME = /wasm-function\[(\d+)\](?::0x([0-9a-fA-F]+))?/;

/** Wasm frames of a V8 stack trace, innermost first. */
export function parseWasmFrames(stack: string, info?: ModuleInfo): WasmFrame[] {
  const frames: WasmFrame[] = [];
  for (const line of stack.split("\n")) {
    if (!/^\s*at /.test(line)) continue;
    const m = FRAME.exec(line);
    if (!m) continue;
    const funcIndex = Number(m[1]);
    frames.push({
      funcIndex,
      name: functionDisplayName(info, funcIndex),
      offset: m[2] !== undefined ? parseInt(m[2], 16) : undefined,
    });
  }
  return frames;
}

/**
 * Backtrace as lines, wasmtime-style: `  0: fib (func[3] @ 0x4b)`, with runs
 * of the same frame (deep recursion) folded into one line.
 */
export function formatBacktrace(frames: WasmFrame[]): string {
  const lines: string[] = [];
  for (let i = 0; i < frames.length; ) {
    const f = frames[i]!;
    let run = 1;
    while (i + run < frames.length && frames[i + run]!.funcIndex === f.funcIndex && frames[i + run]!.offset === f.offset) run++;
    const where = `func[${f.funcIndex}]${f.offset !== undefined ? ` @ ${hex(f.offset)}` : ""}`;
    const label = f.name === `func[${f.funcIndex}]` ? where : `${demangle(f.name)} (${where})`;
    const at = f.source ? ` at ${f.source.file}:${f.source.line}${f.source.column ? `:${f.source.column}` : ""}` : "";
    lines.push(`  ${i}: ${label}${at}${run > 1 ? ` (repeated ${run} times)` : ""}`);
    i += run;
  }
  return lines.join("\n");
}

/**
 * Where the code of a module the sandbox rewrote (memory limit, grow hook,
 * imported memory, fuel) came from, so that trap frames can be given as the
 * original module's offsets (what wasm-objdump shows on the user's file) and
 * with source lines. The rewrites before fuel move whole function bodies but
 * keep their bytes; fuel instrumentation has its own offset map.
 */
export interface FrameOrigin {
  importedFunctions: number;
  /** Per defined function: original body offset minus its offset in the module before fuel (absent: no move). */
  shifts: Int32Array | undefined;
  fuel: OffsetMap | undefined;
  /** Content offset of the original Code section: DWARF addresses count from it. */
  codeStart: number;
  /** The original's `.debug_*` sections, kept only when it has a line table; parsed at the first trap. */
  debug: Map<string, Uint8Array> | undefined;
  lines?: LineTable | null;
}

/**
 * `section` gives a custom section's payload of the original: from its bytes
 * (`bytesOf(bytes)`) or from its compiled module (`sectionsOf(module)`).
 */
export function frameOrigin(section: (c: CustomSection) => Uint8Array, original: Info, beforeFuel: Info, fuel?: OffsetMap): FrameOrigin {
  let shifts: Int32Array | undefined;
  if (original.importedFunctionCount === beforeFuel.importedFunctionCount) {
    const n = Math.min(original.codeBodies.length, beforeFuel.codeBodies.length);
    const d = new Int32Array(n);
    let moved = false;
    for (let i = 0; i < n; i++) moved = (d[i] = original.codeBodies[i]!.offset - beforeFuel.codeBodies[i]!.offset) !== 0 || moved;
    if (moved) shifts = d;
  }
  let debug: Map<string, Uint8Array> | undefined;
  if (original.customSections.some((c) => c.name === ".debug_line")) {
    debug = new Map();
    for (const c of original.customSections) if (c.name.startsWith(".debug_")) debug.set(c.name, section(c));
  }
  return { importedFunctions: original.importedFunctionCount, shifts, fuel, codeStart: original.sections.find((x) => x.id === 10)?.contentOffset ?? 0, debug };
}

/** `frames` (offsets in the rewritten module) with offsets in the original module and, when it has DWARF, source lines. */
export function originalFrames(frames: readonly WasmFrame[], origin: FrameOrigin): WasmFrame[] {
  if (origin.lines === undefined) origin.lines = origin.debug ? readLineTable(origin.debug) ?? null : null;
  return frames.map((f) => {
    if (f.offset === undefined) return f;
    let offset = origin.fuel ? originalOffset(origin.fuel, f.offset) ?? f.offset : f.offset;
    const defined = f.funcIndex - origin.importedFunctions;
    if (origin.shifts && defined >= 0 && defined < origin.shifts.length) offset += origin.shifts[defined]!;
    const source = origin.lines?.lookup(offset - origin.codeStart);
    return { ...f, offset, ...(source ? { source } : {}) };
  });
}

export const bytesOf = (bytes: Uint8Array) => (c: CustomSection): Uint8Array => bytes.slice(c.offset, c.offset + c.size);

export function sectionsOf(module: WebAssembly.Module): (c: CustomSection) => Uint8Array {
  const seen = new Map<string, number>();
  return (c) => {
    const i = seen.get(c.name) ?? 0;
    seen.set(c.name, i + 1);
    const all = WebAssembly.Module.customSections(module, c.name);
    return new Uint8Array(all[i] ?? new ArrayBuffer(0));
  };
}

const RUST_ESCAPES: Record<string, string> = { SP: "@", BP: "*", RF: "&", LT: "<", GT: ">", LP: "(", RP: ")", C: "," };

/**
 * A readable form of a mangled symbol, for backtraces: Rust's legacy mangling
 * (`_ZN3std7process5abort17h7684f52b170e25fcE` -> `std::process::abort`) and
 * the name part of C++'s (`_ZN4demo5crashEPVi` -> `demo::crash`, `_Z5crashPi` -> `crash`;
 * parameter types are left out). Anything else is returned as it is.
 */
export function demangle(name: string): string {
  if (!name.startsWith("_Z")) return name;
  const nested = name.startsWith("_ZN");
  let at = nested ? 3 : 2;
  const parts: string[] = [];
  while (at < name.length) {
    const m = /^\d+/.exec(name.slice(at));
    if (!m) break;
    const len = Number(m[0]);
    at += m[0].length;
    if (len === 0 || at + len > name.length) return name;
    parts.push(name.slice(at, at + len));
    at += len;
    if (!nested) break;
  }
  if (parts.length === 0 || (nested && name[at] !== "E")) return name;
  // Rust's legacy scheme ends with a hash segment: h + 16 hex digits.
  if (nested && parts.length > 1 && /^h[0-9a-f]{16}$/.test(parts[parts.length - 1]!)) parts.pop();
  return parts
    .map((p) => p.replace(/^_\$/, "$").replace(/\$([A-Z]{1,2}|u[0-9a-f]{2})\$/g, (all, code: string) => RUST_ESCAPES[code] ?? (code.startsWith("u") ? String.fromCharCode(parseInt(code.slice(1), 16)) : all)).replace(/\.\./g, "::"))
    .join("::");
}
