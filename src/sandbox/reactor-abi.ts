/**
 * The reactor ABI: how the host calls a warm instance's exports. One file,
 * used by every placement of the engine (inline or in an executor) and by
 * the node's reactor HTTP handler (docs/abi-reactor.md has the contract with
 * C and AssemblyScript examples).
 *
 * ## Calling any export (ReactorArg / ResultKind)
 * Arguments: a `number` is passed as is (V8 converts it to the parameter's
 * i32/f32/f64 type), a `bigint` for an i64 parameter. A `Uint8Array` takes
 * TWO parameters, (ptr: i32, len: i32): the host calls the guest's exported
 * `uniwasm_alloc(len) -> ptr`, copies the bytes there, and calls
 * `uniwasm_free(ptr)` after the call returns. A guest without
 * `uniwasm_alloc` gets the bytes past its static data (its `__heap_base`, else
 * the end of its data segments), 16-byte aligned: the plugin calling
 * convention of docs/extensions.md.
 *
 * Results: by default the wasm result as is (number, bigint for i64,
 * undefined for none). With `result: "bytes"` the function must return an
 * i64 `(ptr << 32) | len`: the host copies those bytes out, then calls
 * `uniwasm_free(ptr)` (so the guest allocates its result with its allocator).
 *
 * ## The HTTP handler (version 1)
 * A reactor serving HTTP exports `memory`, `uniwasm_alloc`, optionally
 * `uniwasm_free` and `_initialize`, and
 *
 *   uniwasm_http_handle(ptr: i32, len: i32) -> i32
 *
 * called with one bytes argument, the request encoded by
 * `encodeReactorRequest`:
 *
 *   u32 little-endian  meta_len
 *   meta_len bytes     the CGI/WAGI variables as `NAME=VALUE\0` strings
 *   the rest           the request body
 *
 * The handler writes its response to stdout (fd 1) in the same CGI form as a
 * WAGI program (header lines, an empty line, the body) and returns 0; any
 * other value, a trap or a limit gives a 502.
 *
 * A guest that breaks the ABI (alloc returns 0 or a pointer outside memory, a
 * bytes result that is not an i64 or points outside memory) throws
 * ReactorAbiError: the guest's fault, so the call ends as a `trap`
 * (trap reason `abi_violation`), never as a host fault.
 */
import { LinkError, InstanceLimitError } from "../kernel/errors.js";

export type ReactorArg = number | bigint | Uint8Array;
export type ReactorValue = number | bigint | Uint8Array | undefined;
export type ResultKind = "value" | "bytes";

export const ALLOC_EXPORT = "uniwasm_alloc";
export const FREE_EXPORT = "uniwasm_free";
export const REACTOR_ABI_VERSION = 1;
export const HTTP_HANDLE_EXPORT = "uniwasm_http_handle";
/** The same names as the node's HTTP ABI calls them. */
export const REACTOR_ALLOC_EXPORT = ALLOC_EXPORT;
export const REACTOR_FREE_EXPORT = FREE_EXPORT;
export const REACTOR_HANDLE_EXPORT = HTTP_HANDLE_EXPORT;

/** The guest broke the reactor ABI: its fault, reported as a trap. */
export class ReactorAbiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReactorAbiError";
  }
}

/** What a call needs to know about the instance. */
export interface AbiTarget {
  exports: WebAssembly.Exports;
  memory: WebAssembly.Memory | undefined;
  /** End of the module's static data, when constant (where an input goes without an allocator). */
  dataEnd?: number | undefined;
}

/**
 * Calls export `name` of `target` with the ABI above and returns its result.
 * Throws LinkError (the export or what the call needs is missing: the
 * caller's mistake), ReactorAbiError (the guest broke the ABI), or whatever
 * the guest's code throws (traps, ProcExit, limits).
 */
export function callExport(target: AbiTarget, name: string, args: readonly ReactorArg[], result: ResultKind = "value"): ReactorValue {
  const { exports } = target;
  const fn = exports[name];
  if (typeof fn !== "function") throw new LinkError(`the reactor has no exported function "${name}"`);
  const toFree: number[] = [];
  const wasmArgs: (number | bigint)[] = [];
  let next = -1; // where the next input goes when the guest has no allocator
  for (const a of args) {
    if (a instanceof Uint8Array) {
      if (!target.memory) throw new LinkError(`"${name}" takes bytes, but the module has no memory to put them in`);
      let ptr: number;
      if (typeof exports[ALLOC_EXPORT] === "function") {
        ptr = allocate(exports, target.memory, a.length);
        toFree.push(ptr);
      } else {
        ptr = next >= 0 ? next : inputBase(target, name);
        next = align16(ptr + a.length);
        ensureMemory(target.memory, ptr + a.length);
      }
      new Uint8Array(target.memory.buffer).set(a, ptr);
      wasmArgs.push(ptr, a.length);
    } else wasmArgs.push(a);
  }
  const raw = (fn as (...a: (number | bigint)[]) => unknown)(...wasmArgs);
  let ret: ReactorValue = raw as ReactorValue;
  if (result === "bytes") {
    if (typeof raw !== "bigint") throw new ReactorAbiError(`"${name}" must return an i64 (ptr << 32 | len) for a bytes result, it returned ${typeof raw}`);
    const ptr = Number((raw >> 32n) & 0xffffffffn);
    const len = Number(raw & 0xffffffffn);
    const mem = new Uint8Array(target.memory!.buffer);
    if (ptr + len > mem.length) throw new ReactorAbiError(`"${name}" returned bytes [${ptr}, +${len}) outside its memory of ${mem.length} bytes`);
    ret = mem.slice(ptr, ptr + len);
    toFree.push(ptr);
  }
  const free = exports[FREE_EXPORT];
  if (typeof free === "function") for (const p of toFree) (free as (p: number) => void)(p);
  return ret;
}

const align16 = (n: number): number => (n + 15) & ~15;

/** Past the guest's static data: its exported `__heap_base`, else the end of its data segments. */
function inputBase(target: AbiTarget, name: string): number {
  const heap = target.exports["__heap_base"];
  if (heap instanceof WebAssembly.Global && typeof heap.value === "number") return align16(heap.value >>> 0);
  if (target.dataEnd === undefined) {
    throw new LinkError(`"${name}" takes bytes, but the module exports no "${ALLOC_EXPORT}(len) -> ptr" and its data's end is not constant (export __heap_base)`);
  }
  return align16(target.dataEnd);
}

/** Grows the guest's memory to hold `end` bytes; past its maximum that is the memory limit. */
function ensureMemory(memory: WebAssembly.Memory, end: number): void {
  const have = memory.buffer.byteLength;
  if (end <= have) return;
  try {
    memory.grow(Math.ceil((end - have) / 65536));
  } catch {
    throw new InstanceLimitError("memory_limit", `the call's input needs ${Math.ceil(end / 65536)} pages, above the memory's maximum`);
  }
}

function allocate(exports: WebAssembly.Exports, memory: WebAssembly.Memory, len: number): number {
  const ptr = (exports[ALLOC_EXPORT] as (n: number) => number)(len) >>> 0;
  if (ptr === 0 && len > 0) throw new ReactorAbiError(`${ALLOC_EXPORT}(${len}) returned 0 (out of memory)`);
  if (ptr + len > memory.buffer.byteLength) throw new ReactorAbiError(`${ALLOC_EXPORT}(${len}) returned ${ptr}, outside its memory of ${memory.buffer.byteLength} bytes`);
  return ptr;
}

/** Encodes a request for `uniwasm_http_handle`. */
export function encodeReactorRequest(env: Record<string, string>, body: Uint8Array): Uint8Array {
  // One string, one allocation, one encode: this runs on the serving thread for every request.
  let meta = "";
  for (const k in env) meta += k + "=" + env[k] + "\0";
  const metaLen = Buffer.byteLength(meta);
  const out = Buffer.allocUnsafeSlow(4 + metaLen + body.length);
  out.writeUInt32LE(metaLen, 0);
  out.write(meta, 4);
  if (body.length > 0) out.set(body, 4 + metaLen);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** Why a module cannot serve as an HTTP reactor, or undefined when its exports fit the ABI. */
export function checkReactorExports(exports: readonly { name: string; kind: string }[]): string | undefined {
  const has = (name: string, kind: string) => exports.some((e) => e.name === name && e.kind === kind);
  const missing = [
    has("memory", "memory") ? null : "memory",
    has(ALLOC_EXPORT, "function") ? null : ALLOC_EXPORT,
    has(HTTP_HANDLE_EXPORT, "function") ? null : HTTP_HANDLE_EXPORT,
  ].filter((x): x is string => x !== null);
  return missing.length === 0 ? undefined : `a reactor must export ${missing.join(", ")} (see docs/abi-reactor.md)`;
}
