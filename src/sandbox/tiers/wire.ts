/**
 * The executor protocol (protocol.ts: WorkerRequest / WorkerReply) carried
 * over a byte stream (a socketpair or a pipe) instead of a SharedArrayBuffer,
 * for executors that live in another process (the process and gvisor tiers).
 *
 * The messages and their encoding are the job slot's (job-slot.ts: plain
 * data, strings interned per direction); only the carrier differs. A frame is
 *
 *   u32 LE payload length | u8 kind | payload
 *
 * kind SMALL: encoded by the stream's long-lived SlotWriter (its interned
 * strings persist across frames, as in the slot); kind LARGE: encoded by a
 * one-off writer sized for it (its own, fresh string table), for messages
 * larger than the slot's data area (module bytes, big outputs).
 *
 * What cannot cross a process boundary is converted at the edges:
 * - a PreparedModule (it holds a compiled WebAssembly.Module) travels as its
 *   rewritten bytes plus metadata, and is compiled again on the other side,
 *   inside the wall (toWireModule / fromWireModule);
 * - a Snapshot's SharedArrayBuffer and Uint32Array travel as bytes.
 */
import { SLOT_DATA_BYTES, SlotReader, SlotWriter, type JobSlot } from "../job-slot.js";
import type { PreparedModule } from "../modules.js";
import type { Snapshot } from "../snapshot.js";

const HEADER = 5;
const SMALL = 0;
const LARGE = 1;
/** Largest frame either side accepts: a bound on what a confused peer can make the other buffer. */
export const MAX_FRAME_BYTES = 1 << 30;

function slotOver(data: Uint8Array): JobSlot {
  return { control: new Int32Array(4), data };
}

/** Encodes messages into frames (one direction of one stream). */
export class FrameEncoder {
  private readonly buffer = new Uint8Array(SLOT_DATA_BYTES);
  private readonly writer = new SlotWriter(slotOver(this.buffer));

  /** The frame for `message`, in a fresh buffer the caller may keep. Throws when it cannot be encoded. */
  encode(message: unknown): Buffer {
    const n = this.writer.write(message);
    if (n >= 0) return frame(SMALL, this.buffer.subarray(0, n));
    // Too big for the long-lived writer: a one-off writer sized for it.
    const size = sizeBound(message);
    if (size < 0) throw new Error("executor protocol: a message is not plain data (see job-slot.ts for what can cross)");
    if (size > MAX_FRAME_BYTES) throw new Error(`executor protocol: a message of ~${size} bytes is over the 1 GiB frame limit`);
    const data = new Uint8Array(size);
    const m = new SlotWriter(slotOver(data)).write(message);
    if (m < 0) throw new Error("executor protocol: a message could not be encoded");
    return frame(LARGE, data.subarray(0, m));
  }
}

/** An upper bound of a message's encoded size (-1: something in it cannot be encoded). */
function sizeBound(v: unknown): number {
  switch (typeof v) {
    case "string":
      return 9 + v.length * 3;
    case "number":
    case "bigint":
    case "boolean":
    case "undefined":
      return 9;
    case "object": {
      if (v === null) return 1;
      if (v instanceof Uint8Array) return v.buffer instanceof SharedArrayBuffer ? -1 : 5 + v.length;
      let n = 5;
      const items = Array.isArray(v) ? v : Object.getPrototypeOf(v) === Object.prototype ? Object.entries(v).flat() : undefined;
      if (!items) return -1;
      for (const x of items) {
        const m = sizeBound(x);
        if (m < 0) return -1;
        n += m;
      }
      return n;
    }
    default:
      return -1;
  }
}

function frame(kind: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out[4] = kind;
  out.set(payload, HEADER);
  return out;
}

/** Splits a byte stream into frames and decodes them (the other end of one direction). */
export class FrameDecoder {
  private readonly buffer = new Uint8Array(SLOT_DATA_BYTES);
  private readonly reader = new SlotReader(slotOver(this.buffer));
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Feeds received bytes; returns the messages completed by them, in order. Throws on a malformed stream. */
  push(chunk: Buffer): unknown[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: unknown[] = [];
    while (this.pendingBytes >= HEADER) {
      let head = this.pending[0]!;
      if (head.length < HEADER) head = this.merge();
      const length = head.readUInt32LE(0);
      const kind = head[4]!;
      if (length > MAX_FRAME_BYTES || (kind !== SMALL && kind !== LARGE)) throw new Error(`executor protocol: bad frame header (length ${length}, kind ${kind})`);
      if (this.pendingBytes < HEADER + length) break;
      if (head.length < HEADER + length) head = this.merge();
      const payload = head.subarray(HEADER, HEADER + length);
      if (kind === SMALL) {
        if (length > this.buffer.length) throw new Error(`executor protocol: small frame of ${length} bytes`);
        this.buffer.set(payload);
        out.push(this.reader.read(length));
      } else {
        // A plain view (not a Buffer): the reader's byte arrays are then copies, not views into the stream's buffer.
        out.push(new SlotReader(slotOver(new Uint8Array(payload.buffer, payload.byteOffset, payload.length))).read(length));
      }
      this.consume(HEADER + length);
    }
    return out;
  }

  private merge(): Buffer {
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [all];
    return all;
  }

  private consume(n: number): void {
    const head = this.pending[0]!;
    if (head.length === n) this.pending.shift();
    else this.pending[0] = head.subarray(n);
    this.pendingBytes -= n;
  }
}

// ---- what cannot cross as is -----------------------------------------------

/**
 * A PreparedModule as plain data: its rewritten bytes instead of the compiled
 * module, its facts (limits, signatures, names...) as they are, Maps as entries.
 */
export interface WireModule {
  facts: Record<string, unknown>;
  /** Names of the facts that were Maps (sent as [key, value][]). */
  maps: string[];
  bytes: Uint8Array;
  linkView?: Uint8Array;
}

export function toWireModule(m: PreparedModule): WireModule {
  if (!m.wire) throw new Error(`module ${m.key} was prepared without its bytes: the pool must keep them for out-of-process executors`);
  const { module: _m, linkView: _l, wire, ...rest } = m;
  const facts: Record<string, unknown> = {};
  const maps: string[] = [];
  for (const [k, v] of Object.entries(rest)) {
    if (v instanceof Map) {
      maps.push(k);
      facts[k] = [...v];
    } else facts[k] = v;
  }
  return { facts, maps, bytes: wire.bytes, ...(wire.linkView ? { linkView: wire.linkView } : {}) };
}

/** Compiles a wire module (on the executor's side of the wall: its worker thread, where a synchronous compile blocks nothing else). */
export function fromWireModule(w: WireModule): PreparedModule {
  const module = new WebAssembly.Module(w.bytes);
  const linkView = w.linkView ? new WebAssembly.Module(w.linkView) : undefined;
  const facts: Record<string, unknown> = { ...w.facts };
  for (const k of w.maps) facts[k] = new Map(facts[k] as [unknown, unknown][]);
  return { ...(facts as unknown as Omit<PreparedModule, "module" | "linkView">), module, ...(linkView ? { linkView } : {}) };
}

/** A Snapshot as plain data: its shared pages and page indexes as bytes. */
export type WireSnapshot = Omit<Snapshot, "pageIndexes" | "pageData"> & { pageIndexes: Uint8Array; pageData: Uint8Array };

export function toWireSnapshot(s: Snapshot): WireSnapshot {
  return {
    ...s,
    pageIndexes: new Uint8Array(s.pageIndexes.buffer.slice(s.pageIndexes.byteOffset, s.pageIndexes.byteOffset + s.pageIndexes.byteLength)),
    pageData: new Uint8Array(s.pageData).slice(),
  };
}

export function fromWireSnapshot(w: WireSnapshot): Snapshot {
  const pageData = new SharedArrayBuffer(w.pageData.length);
  new Uint8Array(pageData).set(w.pageData);
  const idx = new Uint8Array(w.pageIndexes); // a copy at offset 0, aligned for the Uint32Array
  return { ...w, pageIndexes: new Uint32Array(idx.buffer, 0, idx.byteLength / 4), pageData };
}
