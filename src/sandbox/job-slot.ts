/**
 * The job slot: how the pool and one executor pass small requests and
 * results without postMessage. A postMessage costs a structured clone on each
 * side and an event-loop turn in the receiver (10-30 µs per hop on a small
 * VM); here the worker parks in Atomics.wait on the slot's state word, the
 * pool writes the request into the slot and wakes it, and the worker writes
 * the result back and wakes the pool (Atomics.waitAsync).
 *
 * Layout: an Int32 control block (state, where the message is, its length)
 * and a data area holding one encoded message at a time: the request while
 * the state is JOB, the result once it is DONE. Whoever does not own the
 * slot in that state never touches the data area.
 *
 * The encoding covers what requests and results are made of (plain objects,
 * arrays, strings, numbers, bigints, booleans, null, undefined, Uint8Arrays).
 * Anything else (a WebAssembly.Module, a Map, a snapshot's SharedArrayBuffer)
 * or a message larger than the data area does not fit: that message travels
 * by postMessage instead, and the slot only says so (`VIA_PORT`).
 *
 * Strings up to INTERN_MAX_CHARS are interned per direction: the first time
 * a string is sent it is defined with an id, later only the id travels (the
 * receiver keeps the same string object, so no decoding and no rehashing).
 * Syscall names, reasons, messages, module keys and option names repeat run
 * after run.
 */

/** Int32 indexes of the control block. */
export const STATE = 0;
/** Where the current message is: VIA_SLOT (the data area) or VIA_PORT (a postMessage). */
export const WHERE = 1;
/** Bytes of the encoded message in the data area. */
export const LENGTH = 2;
const CONTROL_INTS = 4;

/** STATE values. */
export const IDLE = 0;
/** The pool wrote a request: the worker owns the slot. */
export const JOB = 1;
/** The worker wrote the result: the pool owns the slot. */
export const DONE = 2;

export const VIA_SLOT = 0;
export const VIA_PORT = 1;

/** Data area size: bigger messages (large outputs, module transfers) take postMessage. */
export const SLOT_DATA_BYTES = 128 * 1024;

const INTERN_MAX_CHARS = 64;
const INTERN_MAX_ENTRIES = 2048;

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_INT32 = 4;
const T_FLOAT64 = 5;
const T_BIGINT64 = 6;
/** A new interned string: id (u32), byte length (u32), UTF-8. */
const T_STRING_DEFINE = 7;
/** An interned string: id (u32). */
const T_STRING_REF = 8;
/** A string sent as is: byte length (u32), UTF-8. */
const T_STRING = 9;
const T_BYTES = 10;
const T_ARRAY = 11;
const T_OBJECT = 12;

export interface JobSlot {
  control: Int32Array;
  data: Uint8Array;
}

export function createJobSlot(): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_INTS * 4 + SLOT_DATA_BYTES);
}

export function openJobSlot(buffer: SharedArrayBuffer): JobSlot {
  return { control: new Int32Array(buffer, 0, CONTROL_INTS), data: new Uint8Array(buffer, CONTROL_INTS * 4) };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes messages into a slot's data area (one end of one direction). */
export class SlotWriter {
  private readonly u8: Uint8Array;
  private readonly view: DataView;
  private pos = 0;
  private readonly ids = new Map<string, number>();
  /** Strings interned by the message being written: forgotten again if it does not go through the slot. */
  private readonly fresh: string[] = [];

  constructor(slot: JobSlot) {
    this.u8 = slot.data;
    this.view = new DataView(slot.data.buffer, slot.data.byteOffset, slot.data.byteLength);
  }

  /**
   * Encodes `message` into the data area and returns its length, or -1 when
   * it cannot travel in the slot (then nothing it interned is kept).
   */
  write(message: unknown): number {
    this.pos = 0;
    if (this.value(message)) {
      this.fresh.length = 0;
      return this.pos;
    }
    for (const s of this.fresh) this.ids.delete(s);
    this.fresh.length = 0;
    return -1;
  }

  private room(n: number): boolean {
    return this.pos + n <= this.u8.length;
  }

  private tag(t: number): boolean {
    if (!this.room(1)) return false;
    this.u8[this.pos++] = t;
    return true;
  }

  private u32(n: number): void {
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }

  private value(v: unknown): boolean {
    switch (typeof v) {
      case "string":
        return this.string(v);
      case "number":
        if ((v | 0) === v && !Object.is(v, -0)) {
          if (!this.room(5)) return false;
          this.u8[this.pos++] = T_INT32;
          this.view.setInt32(this.pos, v, true);
          this.pos += 4;
          return true;
        }
        if (!this.room(9)) return false;
        this.u8[this.pos++] = T_FLOAT64;
        this.view.setFloat64(this.pos, v, true);
        this.pos += 8;
        return true;
      case "boolean":
        return this.tag(v ? T_TRUE : T_FALSE);
      case "undefined":
        return this.tag(T_UNDEFINED);
      case "bigint":
        if (BigInt.asIntN(64, v) !== v || !this.room(9)) return false;
        this.u8[this.pos++] = T_BIGINT64;
        this.view.setBigInt64(this.pos, v, true);
        this.pos += 8;
        return true;
      case "object":
        if (v === null) return this.tag(T_NULL);
        if (v instanceof Uint8Array) return this.bytes(v);
        if (Array.isArray(v)) return this.array(v);
        if (Object.getPrototypeOf(v) === Object.prototype) return this.object(v as Record<string, unknown>);
        return false;
      default:
        return false; // functions, symbols: postMessage would refuse them too
    }
  }

  private string(s: string): boolean {
    const id = this.ids.get(s);
    if (id !== undefined) {
      if (!this.room(5)) return false;
      this.u8[this.pos++] = T_STRING_REF;
      this.u32(id);
      return true;
    }
    const intern = s.length <= INTERN_MAX_CHARS && this.ids.size < INTERN_MAX_ENTRIES;
    const head = intern ? 9 : 5;
    const n = s.length;
    // Every UTF-16 unit takes at least one byte.
    if (!this.room(head + n)) return false;
    const start = this.pos;
    this.pos += head;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      this.u8[this.pos + i] = c;
    }
    let len = n;
    if (!ascii) {
      // A lone surrogate would become U+FFFD in UTF-8; postMessage keeps it.
      if (!(s as string & { isWellFormed(): boolean }).isWellFormed()) return false;
      const r = encoder.encodeInto(s, this.u8.subarray(this.pos));
      if (r.read !== n) return false; // out of room
      len = r.written;
    }
    this.pos += len;
    this.u8[start] = intern ? T_STRING_DEFINE : T_STRING;
    if (intern) {
      const newId = this.ids.size;
      this.ids.set(s, newId);
      this.fresh.push(s);
      this.view.setUint32(start + 1, newId, true);
      this.view.setUint32(start + 5, len, true);
    } else this.view.setUint32(start + 1, len, true);
    return true;
  }

  private bytes(b: Uint8Array): boolean {
    // A view on shared memory stays shared through postMessage; keep that meaning.
    if (b.buffer instanceof SharedArrayBuffer || !this.room(5 + b.length)) return false;
    this.u8[this.pos++] = T_BYTES;
    this.u32(b.length);
    this.u8.set(b, this.pos);
    this.pos += b.length;
    return true;
  }

  private array(a: unknown[]): boolean {
    if (Object.getPrototypeOf(a) !== Array.prototype || !this.room(5)) return false;
    this.u8[this.pos++] = T_ARRAY;
    const n = a.length;
    this.u32(n);
    for (let i = 0; i < n; i++) {
      if (!(i in a)) return false; // holes: rare, and postMessage keeps them
      if (!this.value(a[i])) return false;
    }
    return true;
  }

  private object(o: Record<string, unknown>): boolean {
    if (!this.room(5)) return false;
    this.u8[this.pos++] = T_OBJECT;
    const countAt = this.pos;
    this.pos += 4;
    let n = 0;
    for (const k in o) {
      if (!Object.prototype.hasOwnProperty.call(o, k)) continue;
      if (!this.string(k) || !this.value(o[k])) return false;
      n++;
    }
    this.view.setUint32(countAt, n, true);
    return true;
  }
}

/** Reads messages from a slot's data area (the other end of one direction). */
export class SlotReader {
  private readonly u8: Uint8Array;
  private readonly view: DataView;
  private pos = 0;
  private readonly strings: string[] = [];

  constructor(slot: JobSlot) {
    this.u8 = slot.data;
    this.view = new DataView(slot.data.buffer, slot.data.byteOffset, slot.data.byteLength);
  }

  read(length: number): unknown {
    this.pos = 0;
    const v = this.value();
    if (this.pos !== length) throw new Error(`job slot: decoded ${this.pos} of ${length} bytes`);
    return v;
  }

  private u32(): number {
    const n = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return n;
  }

  private utf8(len: number): string {
    const start = this.pos;
    this.pos += len;
    return decoder.decode(this.u8.subarray(start, start + len));
  }

  private value(): unknown {
    const t = this.u8[this.pos++];
    switch (t) {
      case T_UNDEFINED:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_INT32: {
        const v = this.view.getInt32(this.pos, true);
        this.pos += 4;
        return v;
      }
      case T_FLOAT64: {
        const v = this.view.getFloat64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case T_BIGINT64: {
        const v = this.view.getBigInt64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case T_STRING_DEFINE:
      case T_STRING_REF:
      case T_STRING:
        this.pos--;
        return this.string();
      case T_BYTES: {
        const n = this.u32();
        const b = this.u8.slice(this.pos, this.pos + n); // a copy, in unshared memory
        this.pos += n;
        return b;
      }
      case T_ARRAY: {
        const n = this.u32();
        const a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = this.value();
        return a;
      }
      case T_OBJECT: {
        const n = this.u32();
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = this.string();
          const v = this.value();
          if (k === "__proto__") Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
          else o[k] = v;
        }
        return o;
      }
      default:
        throw new Error(`job slot: unknown tag ${t} at byte ${this.pos - 1}`);
    }
  }

  private string(): string {
    const t = this.u8[this.pos++];
    if (t === T_STRING_REF) {
      const s = this.strings[this.u32()];
      if (s === undefined) throw new Error("job slot: reference to an undefined string");
      return s;
    }
    if (t === T_STRING_DEFINE) {
      const id = this.u32();
      const s = this.utf8(this.u32());
      this.strings[id] = s;
      return s;
    }
    if (t === T_STRING) return this.utf8(this.u32());
    throw new Error(`job slot: expected a string, found tag ${t}`);
  }
}
