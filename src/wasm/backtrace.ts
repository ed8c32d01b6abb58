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
  /** Not a wasm trap: an error thrown by a host function (or anything else). */
  | "host_error";

export interface WasmFrame {
  /** Index in the function index space (imports included). */
  funcIndex: number;
  /** Name from the name section, else `func[N]`. */
  name: string;
  /** Byte offset of the instruction in the module, when V8 gave one. */
  offset: number | undefined;
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
    const label = f.name === `func[${f.funcIndex}]` ? where : `${f.name} (${where})`;
    lines.push(`  ${i}: ${label}${run > 1 ? ` (repeated ${run} times)` : ""}`);
    i += run;
  }
  return lines.join("\n");
}
