import { Errno } from "./abi.js";
import { InstanceLimitError, KernelFault, LinkError, ProcExit, ProcSignal, WasiError } from "./errors.js";
import type { Kernel } from "./kernel.js";
import { SYSCALLS, WASI_MODULE, type SyscallSpec } from "./syscalls.js";
import { createWasiAbi, type AbiFunction } from "./wasi-abi.js";
import { formatTraceArgs } from "./trace.js";

/** A function import's type as the wasm reader reports it. */
export interface ImportSignature {
  params: readonly string[];
  results: readonly string[];
}

export interface LinkReport {
  /** WASI calls linked to their real implementation. */
  linked: string[];
  /** WASI calls imported but not granted, linked to an ENOTCAPABLE stub. */
  stubbed: string[];
}

const INDEX = new Map(SYSCALLS.map((s, i) => [s.name as string, i]));

/**
 * Builds an instance's imports = module imports ∩ grants. Nothing else is
 * offered: a module gets no host function it did not import, and an imported
 * call that was not granted is refused up front (strict) or answered by a stub
 * returning ENOTCAPABLE and counted in `kernel.denied`.
 */
export function linkImports(k: Kernel, module: WebAssembly.Module, signatures?: ReadonlyMap<string, ImportSignature>): { imports: WebAssembly.Imports; report: LinkReport } {
  const abi = createWasiAbi(k);
  const wasi: Record<string, WebAssembly.ImportValue> = {};
  const report: LinkReport = { linked: [], stubbed: [] };
  const problems: string[] = [];
  const ungranted: string[] = [];

  for (const imp of WebAssembly.Module.imports(module)) {
    const what = `${imp.module}.${imp.name}`;
    if (imp.module !== WASI_MODULE) {
      problems.push(imp.module === "wasi_unstable"
        ? `${what}: WASI preview 0 (wasi_unstable) is not supported; rebuild for wasm32-wasi preview 1`
        : `${what}: unknown import module "${imp.module}" (uniwasm offers only ${WASI_MODULE})`);
      continue;
    }
    const index = INDEX.get(imp.name);
    if (index === undefined) {
      problems.push(`${what}: no such WASI preview 1 function`);
      continue;
    }
    if (imp.kind !== "function") {
      problems.push(`${what}: imported as a ${imp.kind}, but it is a function`);
      continue;
    }
    const spec = SYSCALLS[index]!;
    const sig = signatures?.get(what);
    if (sig) {
      const want = expectedSignature(spec);
      if (want.params.join() !== sig.params.join() || want.results.join() !== sig.results.join()) {
        problems.push(`${what}: wrong signature (${sig.params.join(", ")}) -> (${sig.results.join(", ")}), expected (${want.params.join(", ")}) -> (${want.results.join(", ")})`);
        continue;
      }
    }
    if (wasi[imp.name]) continue;
    if (k.grants.has(spec.capability)) {
      wasi[imp.name] = wrap(k, index, spec, abi[spec.name] as AbiFunction);
      report.linked.push(imp.name);
    } else {
      ungranted.push(`${imp.name} (needs capability "${spec.capability}")`);
      wasi[imp.name] = stub(k, index, spec);
      report.stubbed.push(imp.name);
    }
  }

  if (problems.length > 0) throw new LinkError(`cannot link module:\n  ${problems.join("\n  ")}`, problems);
  if (k.options.strict && ungranted.length > 0) {
    throw new LinkError(`strict mode: the module imports host calls that are not granted:\n  ${ungranted.join("\n  ")}`, ungranted);
  }
  return { imports: { [WASI_MODULE]: wasi }, report };
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
  if (err instanceof ProcExit || err instanceof ProcSignal || err instanceof InstanceLimitError || err instanceof KernelFault) throw err;
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
  // Fixed-arity wrappers keep the common path free of rest-argument arrays.
  switch (spec.params.length) {
    case 0: return () => { calls[index]!++; try { return impl(); } catch (e) { return fail(e, name); } };
    case 1: return (a) => { calls[index]!++; try { return impl(a); } catch (e) { return fail(e, name); } };
    case 2: return (a, b) => { calls[index]!++; try { return impl(a, b); } catch (e) { return fail(e, name); } };
    case 3: return (a, b, c) => { calls[index]!++; try { return impl(a, b, c); } catch (e) { return fail(e, name); } };
    case 4: return (a, b, c, d) => { calls[index]!++; try { return impl(a, b, c, d); } catch (e) { return fail(e, name); } };
    case 5: return (a, b, c, d, e) => { calls[index]!++; try { return impl(a, b, c, d, e); } catch (x) { return fail(x, name); } };
    default: return (...args: unknown[]) => { calls[index]!++; try { return impl(...args); } catch (e) { return fail(e, name); } };
  }
}

function stub(k: Kernel, index: number, spec: SyscallSpec): Raw {
  const trace = k.options.trace;
  return () => {
    k.denied[index]!++;
    trace?.(`${spec.name}(...) = ${Errno.NOTCAPABLE} (NOTCAPABLE) capability "${spec.capability}" not granted`);
    if (spec.result === "none") {
      throw new KernelFault(`${spec.name} was called but capability "${spec.capability}" is not granted`);
    }
    return Errno.NOTCAPABLE;
  };
}
