import { Errno, SIGNAL_MAX } from "./abi.js";
import { ProcExit, WasiError } from "./errors.js";
import { encodeUtf8 } from "./memory.js";

/** A list of NUL-terminated strings as args_get/environ_get lay them out. */
export class StringList {
  readonly encoded: Uint8Array[];
  readonly bufSize: number;

  constructor(items: readonly string[]) {
    this.encoded = items.map((s) => {
      if (s.includes("\0")) throw new Error(`argument or variable ${JSON.stringify(s)} contains NUL`);
      return encodeUtf8(s + "\0");
    });
    this.bufSize = this.encoded.reduce((n, b) => n + b.length, 0);
  }

  get count(): number {
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
