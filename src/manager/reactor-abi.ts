/**
 * The uniwasm reactor HTTP ABI, version 1 (docs/abi-reactor.md has the full
 * contract with C and AssemblyScript examples).
 *
 * A reactor module exports `memory`, optionally `_initialize` (run once when
 * the instance starts), and (names shared with the sandbox's reactor call ABI):
 *
 *   uniwasm_alloc(size: i32) -> i32    a pointer to `size` writable bytes (0 = out of memory)
 *   uniwasm_free(ptr: i32)             optional: called after the handler returns
 *   uniwasm_http_handle(ptr: i32, len: i32) -> i32
 *
 * The host encodes a request into the buffer from uniwasm_alloc:
 *
 *   u32 little-endian  meta_len
 *   meta_len bytes     the CGI/WAGI variables as `NAME=VALUE\0` strings
 *   the rest           the request body
 *
 * and calls uniwasm_http_handle. The handler writes its response to stdout (fd 1) in
 * the same CGI form as a WAGI program — header lines, an empty line, the body
 * — and returns 0. Any other return value, a trap or a limit gives a 502.
 * After the call the host passes the buffer to uniwasm_free when exported.
 */
export const REACTOR_ABI_VERSION = 1;
export const REACTOR_ALLOC_EXPORT = "uniwasm_alloc";
export const REACTOR_FREE_EXPORT = "uniwasm_free";
export const REACTOR_HANDLE_EXPORT = "uniwasm_http_handle";

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

/** Why an instance cannot serve as a reactor, or undefined when its exports fit the ABI. */
export function checkReactorExports(exports: readonly { name: string; kind: string }[]): string | undefined {
  const has = (name: string, kind: string) => exports.some((e) => e.name === name && e.kind === kind);
  const missing = [
    has("memory", "memory") ? null : "memory",
    has(REACTOR_ALLOC_EXPORT, "function") ? null : REACTOR_ALLOC_EXPORT,
    has(REACTOR_HANDLE_EXPORT, "function") ? null : REACTOR_HANDLE_EXPORT,
  ].filter((x): x is string => x !== null);
  return missing.length === 0 ? undefined : `a reactor must export ${missing.join(", ")} (see docs/abi-reactor.md)`;
}

/**
 * Drives one request through a live instance's exports. Shared by every
 * runner, in-process or inside an executor, so the ABI lives in one place.
 * Returns the handler's status (0 = ok).
 */
export function callReactorHandler(exports: WebAssembly.Exports, request: Uint8Array): number {
  const alloc = exports[REACTOR_ALLOC_EXPORT] as (n: number) => number;
  const handle = exports[REACTOR_HANDLE_EXPORT] as (p: number, n: number) => number;
  const memory = exports["memory"] as WebAssembly.Memory;
  const ptr = alloc(request.length) >>> 0;
  if (ptr === 0 && request.length > 0) throw new ReactorAbiError(`${REACTOR_ALLOC_EXPORT} returned 0 (out of memory)`);
  if (ptr + request.length > memory.buffer.byteLength) throw new ReactorAbiError(`${REACTOR_ALLOC_EXPORT} returned ${ptr}, outside memory`);
  new Uint8Array(memory.buffer, ptr, request.length).set(request);
  const status = handle(ptr, request.length) | 0;
  const free = exports[REACTOR_FREE_EXPORT];
  if (typeof free === "function") (free as (p: number) => void)(ptr);
  return status;
}

export class ReactorAbiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReactorAbiError";
  }
}
