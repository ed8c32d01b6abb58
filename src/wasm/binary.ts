/**
 * Bounded cursor over module bytes, and the matching writer.
 *
 * Every read checks against `end` (the end of the current section or
 * sub-range, never just the end of the buffer), so a lying size field cannot
 * make a parser wander into the next section. LEB128 decoding enforces the
 * spec's maximum lengths and unused-bit rules, which is also what keeps a
 * hostile module from producing 2^64-sized values.
 */
import { WasmFormatError } from "./errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

export class ByteReader {
  readonly bytes: Uint8Array;
  pos: number;
  end: number;
  /** Section being read, for error messages. */
  section: string;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length, section = "header") {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
    this.section = section;
  }

  /** A reader over `[start, start + length)` that reports errors as `section`. */
  sub(length: number, section = this.section): ByteReader {
    this.need(length);
    const r = new ByteReader(this.bytes, this.pos, this.pos + length, section);
    this.pos += length;
    return r;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  fail(detail: string, offset = this.pos): never {
    throw new WasmFormatError(this.section, offset, detail);
  }

  need(n: number): void {
    if (n > this.end - this.pos) {
      throw new WasmFormatError(
        this.section,
        this.pos,
        `expected ${n - (this.end - this.pos)} more byte${n - (this.end - this.pos) === 1 ? "" : "s"}`,
        true,
      );
    }
  }

  u8(): number {
    if (this.pos >= this.end) this.need(1);
    return this.bytes[this.pos++]!;
  }

  bytesView(n: number): Uint8Array {
    this.need(n);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  /** Unsigned LEB128 of at most 32 bits (5 bytes). */
  u32(): number {
    const start = this.pos;
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      if (i === 4) {
        if (b & 0x80) this.fail("LEB128 u32 is longer than 5 bytes", start);
        if (b & 0x70) this.fail("LEB128 u32 value does not fit in 32 bits", start);
        return (result + b * 2 ** 28) >>> 0;
      }
      result |= (b & 0x7f) << (7 * i);
      if (!(b & 0x80)) return result >>> 0;
    }
    /* c8 ignore next */
    return this.fail("unreachable LEB state", start);
  }

  /** Signed LEB128 of at most 32 bits. */
  s32(): number {
    const start = this.pos;
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      if (i === 4) {
        if (b & 0x80) this.fail("LEB128 s32 is longer than 5 bytes", start);
        const high = b & 0x70;
        if (high !== 0 && high !== 0x70) this.fail("LEB128 s32 value does not fit in 32 bits", start);
        if (((b & 0x08) !== 0) !== (high === 0x70)) this.fail("LEB128 s32 has inconsistent sign bits", start);
        return result | ((b & 0x0f) << 28);
      }
      result |= (b & 0x7f) << (7 * i);
      if (!(b & 0x80)) {
        const shift = 7 * (i + 1);
        return b & 0x40 ? (result << (32 - shift)) >> (32 - shift) : result;
      }
    }
    /* c8 ignore next */
    return this.fail("unreachable LEB state", start);
  }

  /** Signed 33-bit LEB128 (block types). Returned as a JS number. */
  s33(): number {
    const start = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      if (i === 4) {
        if (b & 0x80) this.fail("LEB128 s33 is longer than 5 bytes", start);
        const high = b & 0x60;
        const sign = (b & 0x10) !== 0;
        if (high !== (sign ? 0x60 : 0)) this.fail("LEB128 s33 value does not fit in 33 bits", start);
        result += (b & 0x1f) * mul;
        return sign ? result - 2 ** 33 : result;
      }
      result += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) return b & 0x40 ? result - mul : result;
    }
    /* c8 ignore next */
    return this.fail("unreachable LEB state", start);
  }

  /** Validates and skips a signed 64-bit LEB128 (i64.const); the value is not needed. */
  skipS64(): void {
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      if (i === 9) {
        if (b !== 0x00 && b !== 0x7f) this.fail("LEB128 s64 is too long or does not fit in 64 bits", start);
        return;
      }
      if (!(b & 0x80)) return;
    }
  }

  /**
   * Unsigned 64-bit LEB128 as a number (memory64 limits, memarg offsets).
   * Values above 2^53 are refused: no real limit or offset needs them.
   */
  u64(): number {
    const start = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      if (i === 9 && b > 0x01) this.fail("LEB128 u64 is too long or does not fit in 64 bits", start);
      result += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) {
        if (!Number.isSafeInteger(result)) this.fail("u64 value above 2^53 is not supported", start);
        return result;
      }
    }
    /* c8 ignore next */
    return this.fail("unreachable LEB state", start);
  }

  /** `vec(byte)` decoded as UTF-8, as names must be. */
  name(): string {
    const start = this.pos;
    const len = this.u32();
    const view = this.bytesView(len);
    try {
      return utf8.decode(view);
    } catch {
      return this.fail("name is not valid UTF-8", start);
    }
  }

  /**
   * A vector count, refused up front when the remaining bytes cannot hold
   * `count` entries of at least `minEntryBytes` each, or when it is above `cap`.
   * This is what makes a module declaring 2^32 imports fail in O(1).
   */
  count(what: string, minEntryBytes: number, cap: number): number {
    const start = this.pos;
    const n = this.u32();
    if (n > cap) this.fail(`${n} ${what} declared, more than the maximum of ${cap}`, start);
    if (n * minEntryBytes > this.remaining) {
      throw new WasmFormatError(
        this.section,
        start,
        `${n} ${what} declared but only ${this.remaining} bytes remain`,
        true,
      );
    }
    return n;
  }
}

/** Growable byte buffer with LEB128 encoders. */
export class ByteWriter {
  private buf: Uint8Array;
  length = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(Math.max(16, initial));
  }

  private ensure(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(b: number): this {
    this.ensure(1);
    this.buf[this.length++] = b & 0xff;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.ensure(data.length);
    this.buf.set(data, this.length);
    this.length += data.length;
    return this;
  }

  u32(value: number): this {
    let v = value >>> 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.u8(b);
    } while (v !== 0);
    return this;
  }

  /** Unsigned LEB128 of a safe integer up to 2^53 (memory64 limits). */
  u64(value: number): this {
    let v = value;
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v !== 0) b |= 0x80;
      this.u8(b);
    } while (v !== 0);
    return this;
  }

  /** Signed LEB128 of a bigint (i64.const). */
  s64(value: bigint): this {
    let v = BigInt.asIntN(64, value);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
      this.u8(done ? b : b | 0x80);
      if (done) return this;
    }
  }

  name(s: string): this {
    const data = new TextEncoder().encode(s);
    this.u32(data.length);
    return this.bytes(data);
  }

  toBytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
