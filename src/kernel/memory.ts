import { Errno } from "./abi.js";
import { WasiError } from "./errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Most iovecs one call takes, as Linux's IOV_MAX (readv(2): EINVAL past it). */
export const IOV_MAX = 1024;

/**
 * A list of buffers a call reads into or writes from: a guest's iovec array
 * (GuestIovecs) or, in tests and host code, a plain array. `at(i)` may make
 * the window on demand, so callers take one buffer at a time and keep none.
 */
export interface Buffers {
  readonly length: number;
  at(i: number): Uint8Array | undefined;
}
const utf8Encoder = new TextEncoder();

/**
 * The one checked view of a guest's linear memory. Every pointer a guest hands
 * to a host call is read through here, so a bad pointer or length becomes
 * EFAULT instead of a host exception or an out-of-bounds host access.
 * The view is refreshed lazily because memory.grow detaches the old buffer.
 */
/** Views of nothing, shared by every unbound GuestMemory (zero-length, so immutable). */
const NO_BUFFER = new ArrayBuffer(0);
const NO_DATAVIEW = new DataView(NO_BUFFER);
const NO_BYTES = new Uint8Array(NO_BUFFER);

export class GuestMemory {
  private buffer: ArrayBuffer = NO_BUFFER;
  private dv = NO_DATAVIEW;
  private u8a = NO_BYTES;

  constructor(private memory: WebAssembly.Memory | null = null) {
    if (memory) this.refresh();
  }

  bind(memory: WebAssembly.Memory): void {
    this.memory = memory;
    this.refresh();
  }

  get bound(): boolean {
    return this.memory !== null;
  }

  /** The memory this view reads (null before `bind`). */
  get target(): WebAssembly.Memory | null {
    return this.memory;
  }

  private refresh(): void {
    if (!this.memory) throw new WasiError(Errno.FAULT, "the module exports no memory");
    this.buffer = this.memory.buffer as ArrayBuffer;
    this.dv = new DataView(this.buffer);
    this.u8a = new Uint8Array(this.buffer);
  }

  /** Current view; re-created when the memory grew (detached) or a shared memory grew. */
  private view(end: number): DataView {
    if (end > this.buffer.byteLength || this.buffer.byteLength === 0) {
      this.refresh();
      if (end > this.buffer.byteLength) throw new WasiError(Errno.FAULT, `address ${end} out of bounds`);
    }
    return this.dv;
  }

  /** Checks [ptr, ptr+len) and returns the end; pointers arrive as signed i32. */
  check(ptr: number, len: number): number {
    const p = ptr >>> 0;
    const end = p + (len >>> 0);
    this.view(end);
    return end;
  }

  u8(ptr: number): number { return this.view((ptr >>> 0) + 1).getUint8(ptr >>> 0); }
  u16(ptr: number): number { return this.view((ptr >>> 0) + 2).getUint16(ptr >>> 0, true); }
  u32(ptr: number): number { return this.view((ptr >>> 0) + 4).getUint32(ptr >>> 0, true); }
  u64(ptr: number): bigint { return this.view((ptr >>> 0) + 8).getBigUint64(ptr >>> 0, true); }

  setU8(ptr: number, v: number): void { this.view((ptr >>> 0) + 1).setUint8(ptr >>> 0, v); }
  setU16(ptr: number, v: number): void { this.view((ptr >>> 0) + 2).setUint16(ptr >>> 0, v, true); }
  setU32(ptr: number, v: number): void { this.view((ptr >>> 0) + 4).setUint32(ptr >>> 0, v, true); }
  setU64(ptr: number, v: bigint): void { this.view((ptr >>> 0) + 8).setBigUint64(ptr >>> 0, v, true); }

  /** A live window onto guest memory (no copy). Valid until the next memory.grow. */
  bytes(ptr: number, len: number): Uint8Array {
    const p = ptr >>> 0;
    const end = this.check(p, len);
    return this.u8a.subarray(p, end);
  }

  /** Copies host bytes into guest memory. */
  write(ptr: number, data: Uint8Array): void {
    this.bytes(ptr, data.length).set(data);
  }

  /** Reads a UTF-8 string; invalid UTF-8 is EILSEQ. */
  string(ptr: number, len: number): string {
    const b = this.bytes(ptr, len);
    try {
      return utf8.decode(b);
    } catch {
      throw new WasiError(Errno.ILSEQ, "invalid UTF-8");
    }
  }

  /**
   * Reads an iovec array: at most IOV_MAX entries (EINVAL past it, before
   * anything else, as Linux), every buffer bounds-checked up front (EFAULT, no
   * partial effect). The array is copied once into one host Uint32Array, as
   * Linux copies iovecs in, so a read landing on the array itself cannot
   * redirect the buffers after it; no host object is made per iovec.
   */
  iovecs(ptr: number, count: number): GuestIovecs {
    const n = count >>> 0;
    if (n > IOV_MAX) throw new WasiError(Errno.INVAL, `${n} iovecs: at most ${IOV_MAX} per call`);
    const p = ptr >>> 0;
    this.check(p, n * 8);
    const words = new Uint32Array(n * 2);
    for (let i = 0; i < n * 2; i++) {
      words[i] = this.dv.getUint32(p + i * 4, true);
    }
    for (let i = 0; i < n; i++) this.check(words[i * 2]!, words[i * 2 + 1]!);
    return new GuestIovecs(this.u8a, words);
  }
}

/** A checked copy of a guest iovec array; `at(i)` makes the i-th window when asked. */
export class GuestIovecs implements Buffers {
  readonly length: number;
  constructor(private readonly memory: Uint8Array, private readonly words: Uint32Array) {
    this.length = words.length / 2;
  }
  at(i: number): Uint8Array | undefined {
    if (i < 0 || i >= this.length) return undefined;
    const p = this.words[i * 2]!;
    return this.memory.subarray(p, p + this.words[i * 2 + 1]!);
  }
  /** Sum of the buffer lengths (up to IOV_MAX × 4 GiB: a double holds it exactly). */
  totalLength(): number {
    let n = 0;
    for (let i = 0; i < this.length; i++) n += this.words[i * 2 + 1]!;
    return n;
  }
}

export function encodeUtf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}
