/**
 * Calling one export of a module: the plugin use (Extism's `extism call` is
 * the model), as `uniwasm call` and `callModule` do it.
 *
 * The plugin calling convention (docs/extensions.md):
 * - the module is instantiated (extensions linked only as granted), its
 *   `_initialize` runs if it exports one (a reactor), `_start` never does;
 * - an *input* (bytes) takes the export's first two parameters, (ptr: i32,
 *   len: i32): the host copies it into guest memory — at `uniwasm_alloc(len)`
 *   when the guest exports that (freed with `uniwasm_free` afterwards), else
 *   past the guest's static data (its `__heap_base`, or the end of its data
 *   segments), 16-byte aligned, growing the memory as needed;
 * - further parameters come after, as numbers (i64 as bigint);
 * - the *result* is the export's wasm value; with `result: "bytes"` the
 *   export returns an i64 `(ptr << 32) | len` and the host copies those
 *   bytes out (then `uniwasm_free(ptr)` if exported). The guest's own stdout
 *   and stderr are output too.
 */
import { checkModule, findExport, funcType, type FuncType, type ModuleInfo } from "../wasm/index.js";
import type { KernelOptions } from "../kernel/options.js";
import type { GuestOutcome, ReactorArg, ReactorValue, ResultKind } from "./guest.js";
import type { Limits } from "./limits.js";
import { WasmImage } from "./modules.js";
import { InlineEngine } from "./inline.js";
import { ReactorStartError } from "./engine.js";

export interface ModuleCallOptions extends Omit<KernelOptions, "limits" | "io" | "hostWork"> {
  /** The call's limits (default: DEFAULT_LIMITS). */
  limits?: Limits;
  /** Bytes (or text, as UTF-8) given to the export as its first two parameters (ptr, len). */
  input?: Uint8Array | string;
  /** The export's other parameters, in order. */
  params?: readonly (number | bigint)[];
  /** How to read the result (see the convention above). Default "value". */
  result?: ResultKind;
}

export interface ModuleCallResult extends GuestOutcome {
  /** The export's result, when the call returned. */
  value?: ReactorValue;
}

/** A problem with how the call was asked for (unknown export, wrong parameter count): the caller's mistake. */
export class CallUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CallUsageError";
  }
}

/** The export's signature, checked against what the call will pass. Throws CallUsageError. */
export function planCall(info: ModuleInfo, name: string, withInput: boolean, params: number): FuncType {
  const exp = findExport(info, name);
  if (!exp) {
    const fns = info.exports.filter((e) => e.kind === "function").map((e) => e.name);
    throw new CallUsageError(`the module exports no ${JSON.stringify(name)} (its functions: ${fns.join(", ") || "none"})`);
  }
  if (exp.kind !== "function") throw new CallUsageError(`export ${JSON.stringify(name)} is a ${exp.kind}, not a function`);
  const t = funcType(info, exp.index)!;
  const rest = withInput ? t.params.slice(2) : t.params;
  if (withInput && (t.params[0] !== "i32" || t.params[1] !== "i32")) {
    throw new CallUsageError(`an input needs ${name}'s first two parameters to be (ptr: i32, len: i32); it takes (${t.params.join(", ")})`);
  }
  if (rest.length !== params) {
    throw new CallUsageError(`${name} takes (${t.params.join(", ")}): ${withInput ? "after the input's (ptr, len), " : ""}${rest.length} more argument${rest.length === 1 ? "" : "s"}, ${params} given`);
  }
  return t;
}

/** Parses command-line arguments as the export's parameter types (after the input's two, if any). */
export function parseParams(t: FuncType, withInput: boolean, args: readonly string[]): (number | bigint)[] {
  const types = withInput ? t.params.slice(2) : t.params;
  return args.map((a, i) => {
    const type = types[i]!;
    if (type === "i64") {
      if (!/^-?\d+$/.test(a)) throw new CallUsageError(`argument ${i + 1} (${JSON.stringify(a)}): expected an i64 integer`);
      return BigInt.asIntN(64, BigInt(a));
    }
    if (type === "i32") {
      if (!/^-?\d+$/.test(a) || Number(a) < -(2 ** 31) || Number(a) > 2 ** 32 - 1) throw new CallUsageError(`argument ${i + 1} (${JSON.stringify(a)}): expected an i32 integer`);
      return Number(a) | 0;
    }
    if (type === "f32" || type === "f64") {
      const n = Number(a);
      if (a.trim() === "" || (Number.isNaN(n) && a !== "NaN")) throw new CallUsageError(`argument ${i + 1} (${JSON.stringify(a)}): expected a number`);
      return n;
    }
    throw new CallUsageError(`argument ${i + 1}: parameters of type ${type} cannot be given on a command line`);
  });
}

/**
 * Calls one export of a module on this thread, with the convention above.
 * Extension handlers and providers (KernelOptions.extensions) are called
 * directly, so providers must answer synchronously; for untrusted code and
 * asynchronous providers use an ExecutorPool reactor (as `uniwasm call` does).
 * Throws CallUsageError or WasmError before anything runs; everything the
 * guest does is in the result.
 */
export async function callModule(bytes: Uint8Array, name: string, options: ModuleCallOptions = {}): Promise<ModuleCallResult> {
  const info = checkModule(bytes);
  const { input, params = [], result = "value", limits, ...run } = options;
  planCall(info, name, input !== undefined, params.length);
  // The engine's inline placement: the same preparation, limits and ABI as everywhere.
  const engine = new InlineEngine();
  try {
    let reactor;
    try {
      reactor = await engine.reactor(new WasmImage(bytes, "once"), { ...run, ...(limits ? { limits } : {}) });
    } catch (err) {
      if (err instanceof ReactorStartError) return err.outcome;
      throw err;
    }
    const args: ReactorArg[] = input === undefined ? [...params] : [typeof input === "string" ? new TextEncoder().encode(input) : input, ...params];
    const { value, outcome } = await reactor.call(name, args, { result });
    await reactor.close();
    return value === undefined ? outcome : { ...outcome, value };
  } finally {
    await engine.close();
  }
}
