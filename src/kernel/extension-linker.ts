/**
 * The linker's half for host extensions: resolves a module's non-WASI imports
 * against the extensions this kernel offers (the built-ins plus any the
 * embedder defined), links the granted functions to counted, traced
 * wrappers, the ungranted ones to stubs (or refuses them, strict), and
 * creates the memories granted extensions provide.
 */
import { Errno } from "./abi.js";
import { KernelFault, WasiError } from "./errors.js";
import {
  ExtensionDenied,
  extensionFailure,
  extensionSignature,
  isGranted,
  synchronousProvider,
  type Extension,
  type ExtensionContext,
  type ExtensionFunction,
} from "./extensions.js";
import { BUILTIN_EXTENSIONS } from "./ext/index.js";
import type { Kernel } from "./kernel.js";
import type { ImportSignature, LinkReport } from "./linker.js";
import type { ExtensionOptions } from "./options.js";

/** A memory import as the wasm reader describes it (the linker creates granted ones with these limits). */
export interface MemoryImportInfo {
  module: string;
  name: string;
  /** Pages. */
  min: number;
  max?: number | undefined;
  shared?: boolean;
}

type Raw = (...args: unknown[]) => number | void;

/**
 * One instance's extensions: what is offered and granted, who provides it,
 * and the per-function call and denial counters (names `module.function`).
 */
export class ExtensionTable {
  readonly offered: ReadonlyMap<string, Extension<any, any>>;
  readonly grants: ReadonlySet<string>;
  private readonly providers: Readonly<Record<string, object>>;
  private readonly remote: boolean;
  /** Qualified names of the functions linked, indexed like the counters. */
  names: string[] = [];
  calls = new Float64Array(0);
  denied: Float64Array | null = null;

  constructor(options: ExtensionOptions = {}) {
    const offered = new Map<string, Extension<any, any>>(BUILTIN_EXTENSIONS.map((e) => [e.name, e]));
    for (const e of options.define ?? []) offered.set(e.name, e);
    this.offered = offered;
    this.grants = new Set(options.grants ?? []);
    this.providers = options.providers ?? {};
    this.remote = options.remote === true;
  }

  /** The provider of `ext` as handlers see it; undefined when the host supplies none. */
  provider(ext: string): object | undefined {
    const p = this.providers[ext];
    if (!p) return undefined;
    return this.remote ? p : synchronousProvider(ext, p);
  }

  hasProvider(ext: string): boolean {
    return this.providers[ext] !== undefined;
  }

  countDenied(index: number): void {
    (this.denied ??= new Float64Array(this.names.length))[index]!++;
  }

  counts(which: "calls" | "denied"): Record<string, number> {
    const arr = which === "calls" ? this.calls : this.denied;
    const out: Record<string, number> = {};
    if (!arr) return out;
    this.names.forEach((n, i) => {
      if (arr[i]! > 0) out[n] = arr[i]!;
    });
    return out;
  }
}

export interface ExtensionLink {
  problems: string[];
  /** Ungranted imports, for strict mode's refusal. */
  ungranted: string[];
  imports: Record<string, Record<string, WebAssembly.ImportValue>>;
  report: LinkReport;
  /** Installs the counters (once the link is known to succeed). */
  attach(): void;
}

const grantHint = (ext: string, cap: string): string =>
  `grant it with --ext ${cap === ext ? ext : `${ext} (or ${cap})`} or capabilities.extensions = ["${cap === ext ? ext : cap}"]`;

/** Resolves, checks and links a module's extension imports for kernel `k`. */
export function linkExtensions(
  k: Kernel,
  others: readonly { module: string; name: string; kind: string }[],
  signatures: ReadonlyMap<string, ImportSignature> | undefined,
  memories: readonly MemoryImportInfo[] | undefined,
): ExtensionLink {
  const table = k.extensions;
  const problems: string[] = [];
  const ungranted: string[] = [];
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  const report: LinkReport = { linked: [], stubbed: [] };
  const names: string[] = [];
  const pending: { index: number; ext: Extension<any, any>; fname: string; f: ExtensionFunction<any, any>; granted: boolean }[] = [];
  const seen = new Set<string>();
  const inModule = new Set(others.filter((o) => o.kind === "memory").map((o) => `${o.module}.${o.name}`));
  const memoryInfo = new Map((memories ?? []).map((m) => [`${m.module}.${m.name}`, m]));
  const memoryImports = new Map<string, { module: string; name: string }>();
  for (const m of [...others.filter((o) => o.kind === "memory"), ...(memories ?? [])]) memoryImports.set(`${m.module}.${m.name}`, m);

  for (const imp of others) {
    const what = `${imp.module}.${imp.name}`;
    if (imp.kind === "memory") continue;
    const ext = table.offered.get(imp.module);
    if (!ext) {
      problems.push(`${what}: unknown import module "${imp.module}" (uniwasm offers wasi_snapshot_preview1 and the extensions ${[...table.offered.keys()].join(", ")})`);
      continue;
    }
    const f = Object.hasOwn(ext.functions, imp.name) ? ext.functions[imp.name] : undefined;
    if (!f) {
      problems.push(`${what}: extension "${ext.name}" has no function "${imp.name}" (it has ${Object.keys(ext.functions).join(", ")})`);
      continue;
    }
    if (imp.kind !== "function") {
      problems.push(`${what}: imported as a ${imp.kind}, but it is a function`);
      continue;
    }
    const sig = signatures?.get(what);
    const want = extensionSignature(f);
    if (sig?.params.includes("|")) {
      problems.push(`${what}: imported twice with different signatures`);
      continue;
    }
    if (sig && (want.params.join() !== sig.params.join() || want.results.join() !== sig.results.join())) {
      problems.push(`${what}: wrong signature (${sig.params.join(", ")}) -> (${sig.results.join(", ")}), expected (${want.params.join(", ")}) -> (${want.results.join(", ")})`);
      continue;
    }
    if (seen.has(what)) continue;
    seen.add(what);
    const cap = f.capability ?? ext.name;
    const granted = isGranted(table.grants, ext.name, cap);
    if (granted && ext.needsProvider && !table.hasProvider(ext.name)) {
      problems.push(`${what}: extension "${ext.name}" is granted, but this host supplies no provider for it`);
      continue;
    }
    if (!granted) ungranted.push(`${what} (needs extension "${cap}": ${grantHint(ext.name, cap)})`);
    pending.push({ index: names.length, ext, fname: imp.name, f, granted });
    names.push(what);
  }

  const created: { key: string; memory: WebAssembly.Memory }[] = [];
  for (const [key, { module: mod, name }] of memoryImports) {
    const ext = table.offered.get(mod);
    if (!ext || !(ext.memories ?? []).includes(name)) {
      problems.push(`${key}: a memory imported from "${mod}", which provides none (an extension that does, such as env, must be granted)`);
      continue;
    }
    if (!isGranted(table.grants, ext.name, ext.name)) {
      problems.push(`${key}: a memory provided by extension "${ext.name}", which is not granted (${grantHint(ext.name, ext.name)})`);
      continue;
    }
    if (!inModule.has(key)) continue; // rewritten into a defined memory by the sandbox: granted, nothing to create
    const info = memoryInfo.get(key);
    if (!info) {
      problems.push(`${key}: cannot provide this memory without its declared limits (link with the module's imports read by the wasm reader)`);
      continue;
    }
    created.push({
      key,
      memory: new WebAssembly.Memory({ initial: info.min, maximum: info.max ?? 65536, shared: info.shared === true } as WebAssembly.MemoryDescriptor),
    });
    (imports[mod] ??= {})[name] = created[created.length - 1]!.memory;
  }

  if (problems.length > 0) return { problems, ungranted, imports: {}, report, attach: () => undefined };

  const contexts = new Map<string, Ctx>();
  const ctxFor = (ext: Extension<any, any>): Ctx => {
    let c = contexts.get(ext.name);
    if (!c) {
      c = new Ctx(k, ext, table.provider(ext.name));
      contexts.set(ext.name, c);
    }
    return c;
  };
  for (const p of pending) {
    const mod = (imports[p.ext.name] ??= {});
    if (p.granted) {
      mod[p.fname] = wrap(k, ctxFor(p.ext), p.index, names[p.index]!, p.f);
      report.linked.push(names[p.index]!);
    } else {
      mod[p.fname] = stub(k, p.index, names[p.index]!, p.f, p.ext);
      report.stubbed.push(names[p.index]!);
    }
  }
  return {
    problems,
    ungranted,
    imports,
    report,
    attach: () => {
      table.names = names;
      table.calls = new Float64Array(names.length);
      table.denied = null;
      // A host-provided memory is the guest's memory: host calls read it, whatever the module exports.
      if (created.length > 0) k.bind(created[0]!.memory);
    },
  };
}

/** The context a handler is called with (one per extension per instance). */
class Ctx implements ExtensionContext<unknown, unknown> {
  readonly state: unknown;
  /** Index of the function being called, for `deny`. */
  current = 0;
  private readonly providerObject: object | undefined;

  constructor(
    private readonly k: Kernel,
    private readonly ext: Extension<any, any>,
    provider: object | undefined,
  ) {
    this.providerObject = provider;
    this.state = ext.state ? ext.state() : undefined;
  }

  get memory() {
    return this.k.memory;
  }

  get provider(): unknown {
    if (!this.providerObject) throw new KernelFault(`${this.ext.name}: this host supplies no provider for the extension`);
    return this.providerObject;
  }

  granted(capability: string): boolean {
    return isGranted(this.k.extensions.grants, this.ext.name, capability);
  }

  countDenied(): void {
    this.k.extensions.countDenied(this.current);
  }

  deny(errno: Errno, message: string): never {
    throw new ExtensionDenied(errno, message); // counted by the call's wrapper
  }
}

const POINTER = /(ptr|_out)$/;

function formatArgs(f: ExtensionFunction<any, any>, args: readonly unknown[]): string {
  return f.params
    .map(([name], i) => {
      const v = args[i];
      if (typeof v === "number" && POINTER.test(name)) return `0x${(v >>> 0).toString(16)}`;
      return String(v);
    })
    .join(", ");
}

function wrap(k: Kernel, ctx: Ctx, index: number, qualified: string, f: ExtensionFunction<any, any>): Raw {
  const calls = k.extensions;
  const handler = f.handler;
  const result = f.result;
  const trace = k.options.trace;
  if (trace) {
    return (...args: unknown[]) => {
      calls.calls[index]!++;
      ctx.current = index;
      const shown = formatArgs(f, args);
      try {
        const r = handler(ctx, ...args);
        trace(result === "errno" ? `${qualified}(${shown}) = ${r as number} (${Errno[r as number]})` : `${qualified}(${shown})`);
        return r;
      } catch (err) {
        if (err instanceof ExtensionDenied) calls.countDenied(index);
        if (err instanceof WasiError && result === "errno") {
          trace(`${qualified}(${shown}) = ${err.errno} (${Errno[err.errno]}) ${err.message}`);
          return err.errno;
        }
        trace(`${qualified}(${shown}) ended the instance: ${(err as Error).message}`);
        return extensionFailure(err, qualified, result);
      }
    };
  }
  return (...args: unknown[]) => {
    calls.calls[index]!++;
    ctx.current = index;
    try {
      return handler(ctx, ...args);
    } catch (err) {
      if (err instanceof ExtensionDenied) calls.countDenied(index);
      return extensionFailure(err, qualified, result);
    }
  };
}

function stub(k: Kernel, index: number, qualified: string, f: ExtensionFunction<any, any>, ext: Extension<any, any>): Raw {
  const trace = k.options.trace;
  const cap = f.capability ?? ext.name;
  return () => {
    k.extensions.countDenied(index);
    trace?.(`${qualified}(...) = ${f.result === "errno" ? `${Errno.NOTCAPABLE} (NOTCAPABLE) ` : ""}extension "${cap}" not granted`);
    // A function without a status has nothing to answer with: the call is dropped, and counted.
    return f.result === "errno" ? Errno.NOTCAPABLE : undefined;
  };
}
