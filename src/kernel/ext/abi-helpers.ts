/**
 * Decoding and encoding shared by the built-in extensions' ABI halves: every
 * pointer goes through the kernel's checked memory view, every length has a
 * cap, and variable-size results use one pattern (`*len_out` = the size;
 * ENOBUFS, with nothing written, when the buffer is smaller).
 */
import { Errno } from "../abi.js";
import { WasiError } from "../errors.js";
import type { GuestMemory } from "../memory.js";
import type { ExtensionFunction } from "../extensions.js";

/** Bytes at [ptr, ptr+len) copied out of guest memory (a provider may keep them), at most `max`. */
export function readBytes(memory: GuestMemory, ptr: number, len: number, max: number, what: string, tooBig: Errno = Errno.TOOBIG): Uint8Array {
  const n = len >>> 0;
  if (n > max) throw new WasiError(tooBig, `${what} is ${n} bytes; at most ${max}`);
  return memory.bytes(ptr, n).slice();
}

/** A UTF-8 string at [ptr, ptr+len), at most `max` bytes. */
export function readString(memory: GuestMemory, ptr: number, len: number, max: number, what: string): string {
  const n = len >>> 0;
  if (n > max) throw new WasiError(Errno.NAMETOOLONG, `${what} is ${n} bytes; at most ${max}`);
  return memory.string(ptr, n);
}

/**
 * Writes a variable-size result: `*lenOut` always receives its size; the
 * bytes are written only when they fit in `cap` (else ENOBUFS, so the guest
 * can grow its buffer and ask again).
 */
export function writeResult(memory: GuestMemory, bufPtr: number, cap: number, lenOut: number, data: Uint8Array): Errno {
  memory.check(bufPtr, Math.min(cap >>> 0, data.length)); // a bad buffer is EFAULT even when the result would not fit
  memory.setU32(lenOut, data.length);
  if (data.length > cap >>> 0) return Errno.NOBUFS;
  memory.write(bufPtr, data);
  return Errno.SUCCESS;
}

/** A table of small integer handles to host objects, with a cap (EMFILE past it). */
export class HandleTable<T> {
  private readonly items = new Map<number, T>();
  private next = 1;
  constructor(private readonly max: number, private readonly what: string) {}

  add(item: T): number {
    if (this.items.size >= this.max) throw new WasiError(Errno.MFILE, `at most ${this.max} open ${this.what}s; close one first`);
    while (this.items.has(this.next) || this.next === 0) this.next = (this.next + 1) >>> 0;
    const h = this.next;
    this.next = (this.next + 1) >>> 0;
    this.items.set(h, item);
    return h;
  }

  get(handle: number): T {
    const item = this.items.get(handle >>> 0);
    if (item === undefined) throw new WasiError(Errno.BADF, `${handle} is not an open ${this.what}`);
    return item;
  }

  delete(handle: number): void {
    if (!this.items.delete(handle >>> 0)) throw new WasiError(Errno.BADF, `${handle} is not an open ${this.what}`);
  }

  get size(): number {
    return this.items.size;
  }
}

/**
 * A buffered response (an outbound HTTP response, a service call's answer)
 * read by the guest in chunks; shared by uniwasm:http and uniwasm:service.
 */
export class BufferedResponse {
  private offset = 0;
  constructor(readonly status: number, readonly headers: readonly (readonly [string, string])[], readonly body: Uint8Array) {}

  /** The next chunk of at most `max` bytes (empty at the end). */
  read(max: number): Uint8Array {
    const chunk = this.body.subarray(this.offset, this.offset + max);
    this.offset += chunk.length;
    return chunk;
  }

  headerLines(): Uint8Array {
    return new TextEncoder().encode(this.headers.map(([k, v]) => `${k}: ${v}\n`).join(""));
  }
}

/** The `response_read` ABI: copies the next chunk into the guest's buffer; *len_out = 0 at the end. */
function readResponse(memory: GuestMemory, r: BufferedResponse, bufPtr: number, cap: number, lenOut: number): Errno {
  memory.check(bufPtr, cap);
  memory.check(lenOut, 4);
  const chunk = r.read(cap >>> 0);
  memory.write(bufPtr, chunk);
  memory.setU32(lenOut, chunk.length);
  return Errno.SUCCESS;
}

/**
 * `response_read` and `response_close` over a table of buffered responses: the same two calls in
 * every extension that answers with a body (uniwasm:http, uniwasm:service). `what` names the
 * body in the calls' summaries ("the response", "the callee's answer").
 */
export function responseCalls<P>(what: string): Record<"response_read" | "response_close", ExtensionFunction<HandleTable<BufferedResponse>, P>> {
  return {
    response_read: {
      params: [["response", "i32"], ["buf_ptr", "i32"], ["buf_cap", "i32"], ["len_out", "i32"]],
      result: "errno",
      summary: `Read the next chunk of ${what}; *len_out = 0 at the end.`,
      handler: (ctx, h: number, buf: number, cap: number, lenOut: number) => readResponse(ctx.memory, ctx.state.get(h), buf, cap, lenOut),
    },
    response_close: {
      params: [["response", "i32"]],
      result: "errno",
      summary: "Release a response.",
      handler: (ctx, h: number) => {
        ctx.state.delete(h);
        return Errno.SUCCESS;
      },
    },
  };
}
