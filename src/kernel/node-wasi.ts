import type { Capability } from "./syscalls.js";
import { WASI_MODULE } from "./syscalls.js";
import { Kernel } from "./kernel.js";
import { linkAllWasi } from "./linker.js";
import { ProcExit } from "./errors.js";
import type { KernelOptions } from "./options.js";

/**
 * node:wasi's constructor options, and uniwasm's few additions. Every
 * node:wasi option means what it means there; see docs/kernel.md ("A drop-in
 * for node:wasi") for what differs: this WASI is a sandbox.
 */
export interface WASIOptions {
  /** Required, as in node:wasi. Only "preview1": WASI preview 0 ("unstable") is not supported. */
  version: "preview1";
  /** argv as the guest sees it. Default: none. */
  args?: readonly string[];
  /** Environment variables. Default: none (node:wasi's default too: nothing is inherited). */
  env?: Readonly<Record<string, string>>;
  /** Guest path -> host directory; each is confined (openat semantics, no escape by .. or symlinks). */
  preopens?: Readonly<Record<string, string>>;
  /** true (default): start() returns the guest's exit code; false: proc_exit ends the Node process. */
  returnOnExit?: boolean;
  /** Host descriptors for the guest's stdio. Default 0, 1, 2. */
  stdin?: number;
  stdout?: number;
  stderr?: number;
  /** uniwasm: the grants (default: args, env, clocks, random, fd, poll, proc, sockets, plus fs with preopens). */
  capabilities?: readonly Capability[];
  /** uniwasm: open files, output bytes, in-memory directory bytes. */
  limits?: KernelOptions["limits"];
  /** uniwasm: one strace-style line per host call. */
  trace?: (line: string) => void;
}

/** An error shaped as Node's own (`code` as in node:wasi, so callers that test it keep working). */
function nodeError<E extends Error>(Ctor: new (message: string) => E, code: string, message: string): E {
  const err = new Ctor(message);
  Object.defineProperty(err, "code", { value: code, enumerable: false, configurable: true, writable: true });
  return err;
}

function describe(v: unknown): string {
  if (v === undefined || v === null) return String(v);
  if (typeof v === "function") return `function ${(v as { name?: string }).name ?? ""}`.trim();
  if (typeof v === "object") return `an instance of ${(v as object).constructor?.name ?? "Object"}`;
  return `type ${typeof v} (${JSON.stringify(v)})`;
}

function mustBe(name: string, ok: boolean, what: string, v: unknown): void {
  if (!ok) throw nodeError(TypeError, "ERR_INVALID_ARG_TYPE", `The "${name}" property must be ${what}. Received ${describe(v)}`);
}

/**
 * A drop-in for node:wasi's `WASI`, backed by uniwasm's kernel: the same
 * constructor options, `wasiImport`, `getImportObject()`, `start()` and
 * `initialize()`, the same error codes, so a library written against
 * node:wasi switches by changing its import. Unlike node:wasi, it is a
 * sandbox: preopens cannot be escaped, rights are enforced, nothing ungranted
 * is linked, and the kernel's limits hold.
 */
export class WASI {
  /** The kernel behind this WASI: its counters, descriptors and filesystems. */
  readonly kernel: Kernel;
  /** Every WASI preview 1 function, as node:wasi's `wasiImport`. */
  readonly wasiImport: Record<string, WebAssembly.ImportValue>;
  private readonly returnOnExit: boolean;
  private started = false;

  constructor(options: WASIOptions) {
    if (options === null || typeof options !== "object") {
      throw nodeError(TypeError, "ERR_INVALID_ARG_TYPE", `The "options" argument must be of type object. Received ${describe(options)}`);
    }
    const o = options as WASIOptions & Record<string, unknown>;
    mustBe("options.version", typeof o.version === "string", "of type string", o.version);
    if (o.version !== "preview1") {
      throw nodeError(TypeError, "ERR_INVALID_ARG_VALUE", `The property 'options.version' unsupported WASI version. Received '${String(o.version)}' (uniwasm supports "preview1" only)`);
    }
    if (o.args !== undefined) mustBe("options.args", Array.isArray(o.args), "an instance of Array", o.args);
    if (o.env !== undefined) mustBe("options.env", typeof o.env === "object" && o.env !== null, "of type object", o.env);
    if (o.preopens !== undefined) mustBe("options.preopens", typeof o.preopens === "object" && o.preopens !== null, "of type object", o.preopens);
    if (o.returnOnExit !== undefined) mustBe("options.returnOnExit", typeof o.returnOnExit === "boolean", "of type boolean", o.returnOnExit);
    for (const k of ["stdin", "stdout", "stderr"] as const) {
      if (o[k] !== undefined) mustBe(`options.${k}`, Number.isInteger(o[k]) && (o[k] as number) >= 0, "of type number", o[k]);
    }
    this.returnOnExit = o.returnOnExit ?? true;
    const kernelOptions: KernelOptions = {
      args: (o.args ?? []).map(String),
      env: Object.fromEntries(Object.entries(o.env ?? {}).map(([k, v]) => [k, String(v)])),
      preopens: Object.entries(o.preopens ?? {}).map(([guest, host]) => ({ guest, host: String(host) })),
      stdin: { fd: o.stdin ?? 0 },
      stdout: { fd: o.stdout ?? 1 },
      stderr: { fd: o.stderr ?? 2 },
      ...(o.capabilities ? { capabilities: o.capabilities } : {}),
      ...(o.limits ? { limits: o.limits } : {}),
      ...(o.trace ? { trace: o.trace } : {}),
    };
    this.kernel = new Kernel(kernelOptions);
    this.wasiImport = linkAllWasi(this.kernel);
  }

  /** `{ wasi_snapshot_preview1: wasiImport }`, for `new WebAssembly.Instance(module, …)`. */
  getImportObject(): WebAssembly.Imports {
    return { [WASI_MODULE]: this.wasiImport };
  }

  /**
   * Runs a command: its `_start`. Returns the exit code (0 when `_start`
   * returns; proc_exit's code), or with `returnOnExit: false` ends the process
   * with it. Throws as node:wasi does for a second start, a reactor, or no
   * exported memory; a trap, a limit or a host fault is thrown as is.
   */
  start(instance: WebAssembly.Instance): number {
    const exports = this.enter(instance);
    mustBe("instance.exports._start", typeof exports["_start"] === "function", "of type function", exports["_start"]);
    mustBe("instance.exports._initialize", exports["_initialize"] === undefined, "undefined", exports["_initialize"]);
    this.started = true;
    try {
      (exports["_start"] as () => void)();
      return 0;
    } catch (err) {
      if (!(err instanceof ProcExit)) throw err;
      if (!this.returnOnExit) process.exit(err.code);
      return err.code;
    } finally {
      this.kernel.close();
    }
  }

  /**
   * Initializes a reactor: calls its `_initialize` when it has one. Its other
   * exports can then be called; the kernel stays open for them (`close()`
   * releases its host descriptors).
   */
  initialize(instance: WebAssembly.Instance): void {
    const exports = this.enter(instance);
    mustBe("instance.exports._start", exports["_start"] === undefined, "undefined", exports["_start"]);
    const init = exports["_initialize"];
    if (init !== undefined) mustBe("instance.exports._initialize", typeof init === "function", "of type function", init);
    this.started = true;
    if (typeof init === "function") {
      try {
        (init as () => void)();
      } catch (err) {
        if (!(err instanceof ProcExit)) throw err;
        if (!this.returnOnExit) process.exit(err.code);
        throw err;
      }
    }
  }

  /** uniwasm: releases the host descriptors a reactor's kernel holds (a command's are released when start returns). */
  close(): void {
    this.kernel.close();
  }

  /** The checks start() and initialize() share, in node:wasi's order; binds the instance's memory. */
  private enter(instance: WebAssembly.Instance): WebAssembly.Exports {
    const exports = (instance as { exports?: unknown } | null)?.exports;
    mustBe("instance.exports", typeof exports === "object" && exports !== null, "of type object", exports);
    if (this.started) throw nodeError(Error, "ERR_WASI_ALREADY_STARTED", "WASI instance has already started");
    const memory = (exports as WebAssembly.Exports)["memory"];
    if (!(memory instanceof WebAssembly.Memory)) {
      throw nodeError(TypeError, "ERR_INVALID_ARG_TYPE", `"instance.exports.memory" property must be a WebAssembly.Memory object`);
    }
    this.kernel.bind(memory);
    return exports as WebAssembly.Exports;
  }
}
