import { Errno } from "./abi.js";
import { InstanceLimitError, KernelFault, LinkError, ProcExit, WasiError } from "./errors.js";
import type { Kernel } from "./kernel.js";
import { SYSCALLS, WASI_MODULE, type SyscallName, type SyscallSpec } from "./syscalls.js";
import { WASI_ABI, type AbiFunction } from "./wasi-abi.js";
import { formatTraceArgs } from "./trace.js";
import { linkExtensions, type MemoryImportInfo } from "./extension-linker.js";

/** A function import's type as the wasm reader reports it ("|" joins two conflicting types of one import). */
export interface ImportSignature {
  params: readonly string[];
  results: readonly string[];
}

export interface LinkReport {
  /** WASI calls (and extension functions, as `module.name`) linked to their real implementation. */
  linked: string[];
  /** Calls imported but not granted, linked to an ENOTCAPABLE stub. */
  stubbed: string[];
}

const INDEX = new Map(SYSCALLS.map((s, i) => [s.name as string, i]));

/**
 * Builds an instance's imports = module imports ∩ grants. Nothing else is
 * offered: a module gets no host function it did not import, and an imported
 * call that was not granted is refused up front (strict) or answered by a stub
 * returning ENOTCAPABLE and counted (`kernel.deniedCounts()`). Imports of host
 * extensions (extensions.ts) follow the same rules; `memories` describes the
 * module's memory imports (from the wasm reader), which only a granted
 * extension may provide.
 */
export function linkImports(
  k: Kernel,
  module: WebAssembly.Module,
  signatures?: ReadonlyMap<string, ImportSignature>,
  memories?: readonly MemoryImportInfo[],
): { imports: WebAssembly.Imports; report: LinkReport } {
  const plan = linkPlan(module, signatures);
  const ext = plan.others.length > 0 || (memories && memories.length > 0) ? linkExtensions(k, plan.others, signatures, memories) : undefined;
  const problems = ext ? [...plan.problems, ...ext.problems] : plan.problems;
  if (problems.length > 0) throw new LinkError(`cannot link module:\n  ${problems.join("\n  ")}`, problems);
  const wasi: Record<string, WebAssembly.ImportValue> = {};
  const report: LinkReport = { linked: [], stubbed: [] };
  const ungranted: string[] = ext ? [...ext.ungranted] : [];
  for (const { index, spec } of plan.calls) {
    if (k.grants.has(spec.capability)) {
      wasi[spec.name] = wrap(k, index, spec, WASI_ABI[spec.name as SyscallName](k, k.memory, k.fs));
      report.linked.push(spec.name);
    } else {
      ungranted.push(`${spec.name} (needs capability "${spec.capability}")`);
      wasi[spec.name] = stub(k, index, spec);
      report.stubbed.push(spec.name);
    }
  }
  if (k.options.strict && ungranted.length > 0) {
    throw new LinkError(`strict mode: the module imports host calls that are not granted:\n  ${ungranted.join("\n  ")}`, ungranted);
  }
  const imports: WebAssembly.Imports = plan.calls.length > 0 ? { [WASI_MODULE]: wasi } : {};
  if (ext) {
    ext.attach();
    for (const [mod, values] of Object.entries(ext.imports)) imports[mod] = values;
    report.linked.push(...ext.report.linked);
    report.stubbed.push(...ext.report.stubbed);
  }
  return { imports, report };
}

/**
 * Every WASI call at once, before any module is known: node:wasi's
 * `wasiImport` (node-wasi.ts). Granted calls are linked to the kernel, the
 * others to the ENOTCAPABLE stub, so a module still gets nothing ungranted;
 * V8 checks the signatures when it instantiates.
 */
export function linkAllWasi(k: Kernel): Record<string, WebAssembly.ImportValue> {
  const wasi: Record<string, WebAssembly.ImportValue> = {};
  SYSCALLS.forEach((spec, index) => {
    wasi[spec.name] = k.grants.has(spec.capability) ? wrap(k, index, spec, WASI_ABI[spec.name as SyscallName](k, k.memory, k.fs)) : stub(k, index, spec);
  });
  return wasi;
}

/** What a module imports, checked against the table once per compiled module. */
interface LinkPlan {
  calls: { index: number; spec: SyscallSpec }[];
  /** Imports from other modules: host extensions, resolved per kernel (the extensions offered vary). */
  others: { module: string; name: string; kind: string }[];
  problems: string[];
  signaturesChecked: boolean;
}

/** Plans are facts about immutable compiled modules, so caching them is safe; the WeakMap lets modules be collected. */
const PLANS = new WeakMap<WebAssembly.Module, LinkPlan>();

function linkPlan(module: WebAssembly.Module, signatures?: ReadonlyMap<string, ImportSignature>): LinkPlan {
  const cached = PLANS.get(module);
  if (cached && (cached.signaturesChecked || !signatures)) return cached;
  const plan: LinkPlan = { calls: [], others: [], problems: [], signaturesChecked: signatures !== undefined };
  const seen = new Set<string>();
  for (const imp of WebAssembly.Module.imports(module)) {
    const what = `${imp.module}.${imp.name}`;
    if (imp.module !== WASI_MODULE) {
      if (imp.module === "wasi_unstable") plan.problems.push(`${what}: WASI preview 0 (wasi_unstable) is not supported; rebuild for wasm32-wasi preview 1`);
      else plan.others.push({ module: imp.module, name: imp.name, kind: imp.kind });
      continue;
    }
    const index = INDEX.get(imp.name);
    if (index === undefined) {
      plan.problems.push(`${what}: no such WASI preview 1 function`);
      continue;
    }
    if (imp.kind !== "function") {
      plan.problems.push(`${what}: imported as a ${imp.kind}, but it is a function`);
      continue;
    }
    const spec = SYSCALLS[index]!;
    const sig = signatures?.get(what);
    if (sig?.params.includes("|")) {
      plan.problems.push(`${what}: imported twice with different signatures`);
      continue;
    }
    if (sig) {
      const want = expectedSignature(spec);
      if (want.params.join() !== sig.params.join() || want.results.join() !== sig.results.join()) {
        plan.problems.push(`${what}: wrong signature (${sig.params.join(", ")}) -> (${sig.results.join(", ")}), expected (${want.params.join(", ")}) -> (${want.results.join(", ")})`);
        continue;
      }
    }
    if (seen.has(imp.name)) continue;
    seen.add(imp.name);
    plan.calls.push({ index, spec });
  }
  plan.problems = [...new Set(plan.problems)]; // an import listed twice is reported once
  PLANS.set(module, plan);
  return plan;
}

export function expectedSignature(spec: SyscallSpec): ImportSignature {
  return { params: spec.params.map(([, t]) => t), results: spec.result === "errno" ? ["i32"] : [] };
}

/**
 * Turns what a host call threw into its result: an errno for guest mistakes,
 * or a rethrow that ends the instance for exits, limits and host faults.
 */
function fail(err: unknown, name: string): number {
  if (err instanceof WasiError) return err.errno;
  if (err instanceof ProcExit || err instanceof InstanceLimitError || err instanceof KernelFault) throw err;
  throw new KernelFault(`${name}: host fault: ${(err as Error)?.stack ?? String(err)}`, { cause: err });
}

type Raw = (...args: unknown[]) => number | void;

function wrap(k: Kernel, index: number, spec: SyscallSpec, fn: AbiFunction): Raw {
  const impl = fn as unknown as Raw;
  const calls = k.calls;
  const name = spec.name;
  const trace = k.options.trace;
  if (trace) {
    return (...args: unknown[]) => {
      calls[index]!++;
      const shown = formatTraceArgs(k, spec, args);
      try {
        const r = impl(...args);
        trace(`${name}(${shown}) = ${r === undefined ? "" : `${r} (${Errno[r as number]})`}`);
        return r;
      } catch (err) {
        if (err instanceof WasiError) {
          trace(`${name}(${shown}) = ${err.errno} (${Errno[err.errno]}) ${err.message}`);
          return err.errno;
        }
        trace(`${name}(${shown}) ended the instance: ${(err as Error).message}`);
        return fail(err, name);
      }
    };
  }
  return WRAPPER_FACTORIES.get(name)!(calls, index, impl, fail, name);
}

type WrapperFactory = (calls: number[], index: number, impl: Raw, onError: typeof fail, name: string) => Raw;

/**
 * One wrapper *source* per syscall, compiled once per process. Closures made
 * from one shared literal would share V8's call feedback, making the inner
 * `impl(...)` call megamorphic across all calls of the same arity; a literal
 * per syscall keeps it monomorphic, so V8 inlines the ABI function (about
 * 15 ns saved on clock_time_get). The factories are immutable code, not state.
 */
const WRAPPER_FACTORIES: ReadonlyMap<string, WrapperFactory> = new Map(
  SYSCALLS.map((spec) => {
    const params = spec.params.map((_, i) => `a${i}`).join(", ");
    const body = `return function ${spec.name}(${params}) {
      calls[index]++;
      try { return impl(${params}); } catch (e) { return onError(e, name); }
    };`;
    return [spec.name, new Function("calls", "index", "impl", "onError", "name", body) as WrapperFactory];
  }),
);

function stub(k: Kernel, index: number, spec: SyscallSpec): Raw {
  const trace = k.options.trace;
  return () => {
    k.countDenied(index);
    trace?.(`${spec.name}(...) = ${Errno.NOTCAPABLE} (NOTCAPABLE) capability "${spec.capability}" not granted`);
    if (spec.result === "none") {
      throw new KernelFault(`${spec.name} was called but capability "${spec.capability}" is not granted`);
    }
    return Errno.NOTCAPABLE;
  };
}
