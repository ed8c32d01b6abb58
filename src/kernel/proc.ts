import { Errno, SIGNAL_MAX } from "./abi.js";
import { ProcExit, WasiError } from "./errors.js";
import { encodeUtf8 } from "./memory.js";

/**
 * A list of NUL-terminated strings as args_get/environ_get lay them out.
 * Encoded on first use, into one buffer: most instances (a WAGI request's)
 * are made with a full CGI environment and many never read it.
 */
export class StringList {
  private bytes: Uint8Array | null = null;
  /** Where each string starts in `bytes`. */
  private starts: Uint32Array | null = null;

  constructor(private readonly items: readonly string[]) {
    for (const s of items) if (s.includes("\0")) throw new Error(`argument or variable ${JSON.stringify(s)} contains NUL`);
  }

  get count(): number {
    return this.items.length;
  }

  /** All strings, each followed by NUL, back to back. */
  get encoded(): Uint8Array {
    if (this.bytes === null) {
      const starts = new Uint32Array(this.items.length);
      let all = "";
      for (let i = 0; i < this.items.length; i++) {
        starts[i] = all.length; // UTF-16 units for now; converted to bytes below unless all ASCII
        all += this.items[i] + "\0";
      }
      const bytes = encodeUtf8(all);
      if (bytes.length !== all.length) {
        // Not all ASCII: byte offsets differ from UTF-16 offsets, so count each string's bytes.
        let at = 0;
        for (let i = 0; i < this.items.length; i++) {
          starts[i] = at;
          at += Buffer.byteLength(this.items[i]!) + 1;
        }
      }
      this.bytes = bytes;
      this.starts = starts;
    }
    return this.bytes;
  }

  /** Byte offset of string `i` in `encoded`. */
  start(i: number): number {
    if (this.starts === null) void this.encoded;
    return this.starts![i]!;
  }

  get bufSize(): number {
    return this.encoded.length;
  }
}

export function envList(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([k, v]) => {
    if (k.length === 0 || k.includes("=")) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
}

/** proc_exit: a WASI exit status is u32, but only 0..255 reach a host process. */
export function exit(code: number): never {
  throw new ProcExit(code >>> 0);
}

/**
 * proc_raise: an instance has no signals. A valid signal number is ENOTSUP
 * and the guest carries on (Wasmtime's behaviour); a number outside the
 * `signal` enum is EINVAL.
 */
export function raise(signal: number): void {
  if (signal < 0 || signal > SIGNAL_MAX) throw new WasiError(Errno.INVAL, `unknown signal ${signal}`);
  throw new WasiError(Errno.NOTSUP, "an instance has no signals");
}
