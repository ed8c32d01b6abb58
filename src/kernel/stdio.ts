import * as nodefs from "node:fs";
import { Errno } from "./abi.js";
import { InstanceLimitError, WasiError, host } from "./errors.js";
import type { InputSpec, OutputSpec } from "./options.js";

/** A byte source for stdin. `read` returns 0 at end of input. */
export interface InputStream {
  read(dst: Uint8Array): number;
  /** Whether a read would not block (for poll_oneoff). */
  ready(): boolean;
}

/** A byte sink for stdout/stderr. */
export interface OutputStream {
  write(src: Uint8Array): number;
  /** Everything collected so far, for "buffer" outputs. */
  collected(): Uint8Array;
  readonly written: number;
}

const parked = new Int32Array(new SharedArrayBuffer(4));
/** Sleeps the current thread without spinning: Atomics.wait is allowed off and on the main thread in Node. */
export function sleepMs(ms: number): void {
  Atomics.wait(parked, 0, 0, ms);
}

class BytesInput implements InputStream {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}
  read(dst: Uint8Array): number {
    const n = Math.min(dst.length, this.bytes.length - this.offset);
    dst.set(this.bytes.subarray(this.offset, this.offset + n));
    this.offset += n;
    return n;
  }
  ready(): boolean {
    return true;
  }
}

/** Reads a host descriptor synchronously; a non-blocking descriptor is waited on, not busy-polled. */
class FdInput implements InputStream {
  constructor(private readonly fd: number) {}
  read(dst: Uint8Array): number {
    for (;;) {
      try {
        return nodefs.readSync(this.fd, dst, 0, dst.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") {
          sleepMs(2);
          continue;
        }
        if (code === "EOF") return 0;
        throw host("read", () => {
          throw err;
        });
      }
    }
  }
  ready(): boolean {
    return true;
  }
}

class NullInput implements InputStream {
  read(): number {
    return 0;
  }
  ready(): boolean {
    return true;
  }
}

/**
 * Counts bytes against a cap and forwards them. Past the cap, what still fits
 * is written and the instance ends with `output_limit`.
 */
class CappedOutput implements OutputStream {
  written = 0;
  private readonly chunks: Uint8Array[] = [];
  constructor(
    private readonly name: string,
    private readonly limit: number,
    private readonly sink: ((chunk: Uint8Array) => void) | "buffer",
  ) {}

  write(src: Uint8Array): number {
    const room = this.limit - this.written;
    const n = Math.min(room, src.length);
    if (n > 0) this.emit(src.subarray(0, n));
    this.written += n;
    if (n < src.length) {
      throw new InstanceLimitError("output_limit", `${this.name} exceeded its limit of ${this.limit} bytes`);
    }
    return n;
  }

  private emit(chunk: Uint8Array): void {
    if (this.sink === "buffer") this.chunks.push(chunk.slice());
    else this.sink(chunk);
  }

  collected(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

function writeAllToFd(fd: number): (chunk: Uint8Array) => void {
  return (chunk) => {
    let off = 0;
    while (off < chunk.length) {
      try {
        off += nodefs.writeSync(fd, chunk, off, chunk.length - off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EAGAIN") {
          sleepMs(1);
          continue;
        }
        throw host("write", () => {
          throw err;
        });
      }
    }
  };
}

export function createInput(spec: InputSpec | undefined): InputStream {
  if (spec === undefined || spec === "null") return new NullInput();
  if (spec === "inherit") return new FdInput(0);
  if (typeof spec === "string") return new BytesInput(new TextEncoder().encode(spec));
  if (spec instanceof Uint8Array) return new BytesInput(spec);
  if (typeof spec === "object" && typeof spec.fd === "number") return new FdInput(spec.fd);
  throw new WasiError(Errno.INVAL, "unsupported stdin spec");
}

export function createOutput(name: string, spec: OutputSpec | undefined, limit: number | undefined, hostFd: number): OutputStream {
  const cap = limit ?? Number.POSITIVE_INFINITY;
  if (spec === undefined || spec === "null") return new CappedOutput(name, cap, () => {});
  if (spec === "buffer") return new CappedOutput(name, cap, "buffer");
  if (spec === "inherit") return new CappedOutput(name, cap, writeAllToFd(hostFd));
  if (typeof spec === "function") return new CappedOutput(name, cap, spec);
  if (typeof spec === "object" && typeof spec.fd === "number") return new CappedOutput(name, cap, writeAllToFd(spec.fd));
  throw new Error(`unsupported ${name} spec`);
}
