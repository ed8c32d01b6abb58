/**
 * Host extensions: host functions beyond WASI, offered to a guest under an
 * import module name of their own ("uniwasm:kv", "env"), with the same rules
 * as the WASI calls of the syscall table: linked only when granted (deny by
 * default), an ungranted import stubbed and counted or, strict, refused; each
 * call counted, traced and shown by `inspect`.
 *
 * An extension is two halves (dependency inversion, as the DESIGN asks):
 * - its *ABI half*, defined here with `defineExtension`: functions with wasm
 *   signatures, the capability each needs, and a handler that decodes the
 *   guest's pointers through the kernel's checked memory view (memory.ts) and
 *   calls a typed method of
 * - its *provider*, an object of typed methods supplied from above per
 *   instance (the manager's KV on SQLite, the node's service calls, a checked
 *   HTTP client). Providers see values, never guest memory.
 *
 * Where the guest runs on the provider's thread, the provider is called
 * directly and must answer synchronously. In an executor (a worker thread)
 * the provider is a proxy: each method call parks the worker on the io-bridge
 * channel while the pool's thread runs the real (possibly async) method
 * (see `remoteProviders` and io-bridge.ts).
 *
 * Errors: a guest mistake (bad pointer, unknown key, quota) is a WasiError
 * whose errno the function returns (extensions reuse WASI's errno numbering;
 * each documents the codes it returns in docs/extensions.md); anything else a
 * handler or provider throws ends the instance as `host_fault`, never an errno.
 */
import { Errno } from "./abi.js";
import { InstanceLimitError, KernelFault, ProcExit, WasiError } from "./errors.js";
import type { GuestMemory } from "./memory.js";

export type ExtValType = "i32" | "i64" | "f32" | "f64";

export interface ExtensionFunction<S = unknown, P = unknown> {
  /** Named parameters (names show in `--trace` and the docs; `*ptr`, `*_out` show in hex). */
  readonly params: readonly (readonly [name: string, type: ExtValType])[];
  /**
   * `errno`: returns an i32 status (0 or an Errno), guest mistakes become that errno.
   * `none`: returns nothing; a guest mistake traps (there is no status to return it in).
   */
  readonly result: "errno" | "none";
  /** The grant this function needs: `<extension>` or `<extension>/<name>`. Default: the extension's name. */
  readonly capability?: string;
  /** One line for `inspect` and the docs. */
  readonly summary: string;
  /** The ABI half: decodes arguments through `ctx.memory`, calls `ctx.provider`, writes results. */
  readonly handler: (ctx: ExtensionContext<S, P>, ...args: any[]) => number | void;
}

export interface ExtensionSpec<S = unknown, P = unknown> {
  /** The import module name guests use, e.g. "uniwasm:kv" (the manifest's `capabilities.extensions`). */
  readonly name: string;
  readonly summary: string;
  readonly functions: Readonly<Record<string, ExtensionFunction<S, P>>>;
  /** Memory imports the host provides to a granted module (e.g. `env.memory`), by import name. */
  readonly memories?: readonly string[];
  /** The extension calls its provider: granting it where the host supplies none is a link error. */
  readonly needsProvider?: boolean;
  /** Per-instance state of the ABI half (handle tables, flood budgets), made when the instance links. */
  readonly state?: () => S;
}

/** A checked, frozen extension definition. */
export interface Extension<S = unknown, P = unknown> extends ExtensionSpec<S, P> {
  /** Every capability its functions need (for grants, docs and `inspect`). */
  readonly capabilities: readonly string[];
}

/** What a handler gets: the guest's memory, this instance's provider and state, and refusal accounting. */
export interface ExtensionContext<S = unknown, P = unknown> {
  /** The kernel's bounds-checked view of guest memory: a bad pointer throws EFAULT. */
  readonly memory: GuestMemory;
  /** The provider supplied from above; a KernelFault when the host supplies none. */
  readonly provider: P;
  readonly state: S;
  /** Whether a capability (or the whole extension) is granted to this instance. */
  granted(capability: string): boolean;
  /** Counts the current call as denied by policy without ending it (a dropped log line). */
  countDenied(): void;
  /**
   * Refuses the current call by policy (a host not in the allow-list, an
   * ungranted callee): counted as a denied call like an ungranted import,
   * and returned to the guest as `errno`.
   */
  deny(errno: Errno, message: string): never;
}

/**
 * A refusal by policy (a host not in the allow-list, an ungranted callee or
 * variable), thrown by a provider: the guest gets the errno, and the call is
 * counted as denied, like a call to an ungranted function. Crosses the
 * io-bridge as such.
 */
export class ExtensionDenied extends WasiError {
  constructor(errno: Errno, detail: string) {
    // An answer for the guest, never a bug to trace: no stack. Capturing one costs the serving
    // thread ~15 µs, and refusals come in floods (an outbound flood: ten a request).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(errno, detail);
    Error.stackTraceLimit = limit;
    this.name = "ExtensionDenied";
  }
}

const NAME_RE = /^[a-z][a-z0-9_-]*(:[a-z][a-z0-9_/-]*)?$/;
const FN_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks and freezes an extension definition (names, signatures, capabilities). Throws TypeError naming the problem. */
export function defineExtension<S = unknown, P = unknown>(spec: ExtensionSpec<S, P>): Extension<S, P> {
  if (!NAME_RE.test(spec.name) || spec.name === "wasi_snapshot_preview1" || spec.name === "wasi_unstable") {
    throw new TypeError(`extension name ${JSON.stringify(spec.name)}: expected an import module name such as "uniwasm:kv" ([a-z][a-z0-9_-]*, optionally ":" and more)`);
  }
  const caps = new Set<string>();
  for (const [fname, f] of Object.entries(spec.functions)) {
    const what = `${spec.name}.${fname}`;
    if (!FN_RE.test(fname)) throw new TypeError(`${what}: function names are identifiers`);
    if (typeof f.handler !== "function") throw new TypeError(`${what}: needs a handler`);
    for (const [pname, t] of f.params) {
      if (!["i32", "i64", "f32", "f64"].includes(t)) throw new TypeError(`${what}: parameter ${pname} has type ${String(t)}; use i32, i64, f32 or f64`);
    }
    if (f.result !== "errno" && f.result !== "none") throw new TypeError(`${what}: result must be "errno" or "none"`);
    const cap = f.capability ?? spec.name;
    if (cap !== spec.name && !cap.startsWith(`${spec.name}/`)) throw new TypeError(`${what}: capability ${JSON.stringify(cap)} must be "${spec.name}" or "${spec.name}/<name>"`);
    caps.add(cap);
  }
  for (const m of spec.memories ?? []) if (!FN_RE.test(m) || m in spec.functions) throw new TypeError(`${spec.name}: memory import name ${JSON.stringify(m)} is not an identifier or clashes with a function`);
  return Object.freeze({ ...spec, functions: Object.freeze({ ...spec.functions }), capabilities: Object.freeze([...caps].sort()) });
}

/** What a module imports from an extension, as the linker reports it. */
export interface ExtensionImport {
  module: string;
  name: string;
}

/** Whether `grants` (extension names or `name/capability`) cover `capability` of extension `ext`. */
export function isGranted(grants: ReadonlySet<string>, ext: string, capability: string): boolean {
  return grants.has(capability) || grants.has(ext);
}

/** The wasm signature of an extension function, in the linker's terms. */
export function extensionSignature(f: ExtensionFunction<any, any>): { params: string[]; results: string[] } {
  return { params: f.params.map(([, t]) => t), results: f.result === "errno" ? ["i32"] : [] };
}

/**
 * Turns what an extension call threw into its result: the errno of a guest
 * mistake (or, for a function without a status, a trap naming it); exits,
 * limits and faults end the instance; anything else is a host fault.
 */
export function extensionFailure(err: unknown, qualified: string, result: "errno" | "none"): number {
  if (err instanceof WasiError) {
    if (result === "errno") return err.errno;
    throw new WebAssembly.RuntimeError(`${qualified}: ${err.message}`);
  }
  if (err instanceof ProcExit || err instanceof InstanceLimitError || err instanceof KernelFault || err instanceof WebAssembly.RuntimeError) throw err;
  throw new KernelFault(`${qualified}: host fault: ${(err as Error)?.stack ?? String(err)}`, { cause: err });
}

/**
 * Wraps a provider called on the guest's own thread: a method that answers
 * with a promise cannot be waited for there, which is a host setup mistake
 * (ended as host_fault with the fix), never a hang.
 */
export function synchronousProvider<P extends object>(ext: string, provider: P): P {
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(provider, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof v !== "function") return v;
      let w = cache.get(key);
      if (!w) {
        w = (...args: unknown[]) => {
          const r = (v as (...a: unknown[]) => unknown).apply(target, args);
          if (r !== null && typeof r === "object" && typeof (r as { then?: unknown }).then === "function") {
            (r as Promise<unknown>).then(undefined, () => undefined); // never an unhandled rejection
            throw new KernelFault(`${ext}: the provider's ${String(key)} answered asynchronously; a guest on the provider's own thread cannot wait for it (run it in an executor)`);
          }
          return r;
        };
        cache.set(key, w);
      }
      return w;
    },
  });
}

/** A synchronous call to a provider on another thread (the worker end of the io-bridge). */
export interface HostCalls {
  hostCall(session: number, ext: string, method: string, args: unknown[]): unknown;
}

/**
 * Providers for a guest in an executor: every method call is sent to the
 * pool's thread (session `session`) and parks this thread until it answers.
 * Arguments and results must survive structured cloning. `fields`: the
 * providers' plain fields, copied (read here without a call).
 */
export function remoteProviders(bridge: HostCalls, session: number, names: readonly string[], fields: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {}): Record<string, object> {
  const out: Record<string, object> = {};
  for (const ext of names) {
    const methods = new Map<PropertyKey, unknown>();
    const plain = fields[ext] ?? {};
    out[ext] = new Proxy(
      {},
      {
        get(_t, key) {
          if (typeof key !== "string" || key === "then") return undefined;
          if (Object.hasOwn(plain, key)) return plain[key];
          let m = methods.get(key);
          if (!m) {
            m = (...args: unknown[]) => bridge.hostCall(session, ext, key, args);
            methods.set(key, m);
          }
          return m;
        },
      },
    );
  }
  return out;
}
