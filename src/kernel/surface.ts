import { readFile } from "node:fs/promises";
import { checkModule, importedFunctions, type ModuleInfo, type Limits } from "../wasm/index.js";
import { SYSCALLS, SYSCALL_BY_NAME, WASI_MODULE, type Capability, type Subsystem } from "./syscalls.js";

/** What a module asks of the host: the input of `uniwasm inspect` and of grant checks. */
export interface ModuleSurface {
  /** WASI calls imported, grouped by kernel subsystem. */
  bySubsystem: Partial<Record<Subsystem, string[]>>;
  /** Capabilities the imports need (the grants that would link them all). */
  capabilities: Capability[];
  /** Imports that are not WASI preview 1 calls: the linker refuses these. */
  foreign: { module: string; name: string; kind: string }[];
  exports: { name: string; kind: string }[];
  memories: (Limits & { imported: boolean })[];
  tables: (Limits & { imported: boolean; refType: string })[];
  /** Number of distinct WASI calls imported, out of SYSCALLS.length. */
  surface: number;
  total: number;
  entry: "command" | "reactor" | "library";
}

/** Reads and analyses a module file: the library form of `uniwasm inspect FILE.wasm`. */
export async function inspectModuleFile(path: string): Promise<ModuleSurface & { file: string; bytes: number }> {
  const bytes = new Uint8Array(await readFile(path));
  return { file: path, bytes: bytes.length, ...moduleSurface(checkModule(bytes)) };
}

/** Analyses a module's imports against the syscall table. */
export function moduleSurface(info: ModuleInfo): ModuleSurface {
  const bySubsystem: Partial<Record<Subsystem, string[]>> = {};
  const caps = new Set<Capability>();
  const foreign: ModuleSurface["foreign"] = [];
  const seen = new Set<string>();
  for (const f of importedFunctions(info)) {
    const spec = f.module === WASI_MODULE ? SYSCALL_BY_NAME.get(f.name) : undefined;
    if (!spec) {
      foreign.push({ module: f.module, name: f.name, kind: "function" });
      continue;
    }
    if (seen.has(f.name)) continue;
    seen.add(f.name);
    (bySubsystem[spec.subsystem] ??= []).push(f.name);
    caps.add(spec.capability);
  }
  for (const i of info.imports) if (i.kind !== "function") foreign.push({ module: i.module, name: i.name, kind: i.kind });
  const memories = [
    ...info.imports.flatMap((i) => (i.kind === "memory" ? [{ ...i.memory, imported: true }] : [])),
    ...info.memories.map((m) => ({ ...m, imported: false })),
  ];
  // An imported "env.memory" is how some toolchains share memory; it is not a call, so not foreign.
  const foreignCalls = foreign.filter((f) => !(f.kind === "memory"));
  const tables = [
    ...info.imports.flatMap((i) => (i.kind === "table" ? [{ ...i.table.limits, refType: i.table.refType, imported: true }] : [])),
    ...info.tables.map((t) => ({ ...t.limits, refType: t.refType, imported: false })),
  ];
  const exportNames = new Set(info.exports.map((e) => e.name));
  const order = new Map(SYSCALLS.map((s, i) => [s.name as string, i]));
  for (const list of Object.values(bySubsystem)) list!.sort((a, b) => order.get(a)! - order.get(b)!);
  return {
    bySubsystem,
    capabilities: [...caps].sort(),
    foreign: foreignCalls,
    exports: info.exports.map((e) => ({ name: e.name, kind: e.kind })),
    memories,
    tables,
    surface: seen.size,
    total: SYSCALLS.length,
    entry: exportNames.has("_start") ? "command" : exportNames.has("_initialize") ? "reactor" : "library",
  };
}
