import { readFile } from "node:fs/promises";
import { checkModule, importedFunctions, type ModuleInfo, type Limits } from "../wasm/index.js";
import { SYSCALLS, SYSCALL_BY_NAME, WASI_MODULE, type Capability, type Subsystem } from "./syscalls.js";
import { BUILTIN_EXTENSIONS } from "./ext/index.js";
import type { Extension } from "./extensions.js";

/** What a module asks of the host: the input of `uniwasm inspect` and of grant checks. */
export interface ModuleSurface {
  /** WASI calls imported, grouped by kernel subsystem. */
  bySubsystem: Partial<Record<Subsystem, string[]>>;
  /** Capabilities the imports need (the grants that would link them all). */
  capabilities: Capability[];
  /** Imports of host extensions, grouped by extension (import module): each linked only when granted. */
  extensions: Record<string, { name: string; kind: "function" | "memory"; capability: string; summary: string }[]>;
  /** Extension grants the module needs to link every extension import (`--ext` / capabilities.extensions). */
  extensionGrants: string[];
  /** Imports that are neither WASI preview 1 calls nor functions of a known extension: the linker refuses these. */
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

/**
 * Analyses a module's imports against the syscall table and the extensions
 * offered (the built-ins unless told otherwise).
 */
export function moduleSurface(info: ModuleInfo, offered: readonly Extension<any, any>[] = BUILTIN_EXTENSIONS): ModuleSurface {
  const bySubsystem: Partial<Record<Subsystem, string[]>> = {};
  const caps = new Set<Capability>();
  const foreign: ModuleSurface["foreign"] = [];
  const extensions: ModuleSurface["extensions"] = {};
  const extGrants = new Set<string>();
  const byName = new Map(offered.map((e) => [e.name, e]));
  const seen = new Set<string>();
  const seenExt = new Set<string>();
  for (const f of importedFunctions(info)) {
    const spec = f.module === WASI_MODULE ? SYSCALL_BY_NAME.get(f.name) : undefined;
    if (!spec) {
      const e = byName.get(f.module);
      const fn = e && Object.hasOwn(e.functions, f.name) ? e.functions[f.name] : undefined;
      if (!e || !fn) foreign.push({ module: f.module, name: f.name, kind: "function" });
      else if (!seenExt.has(`${f.module}.${f.name}`)) {
        seenExt.add(`${f.module}.${f.name}`);
        const capability = fn.capability ?? e.name;
        (extensions[e.name] ??= []).push({ name: f.name, kind: "function", capability, summary: fn.summary });
        extGrants.add(capability);
      }
      continue;
    }
    if (seen.has(f.name)) continue;
    seen.add(f.name);
    (bySubsystem[spec.subsystem] ??= []).push(f.name);
    caps.add(spec.capability);
  }
  for (const i of info.imports) {
    if (i.kind === "function") continue;
    const e = i.kind === "memory" ? byName.get(i.module) : undefined;
    if (e && (e.memories ?? []).includes(i.name)) {
      (extensions[e.name] ??= []).push({ name: i.name, kind: "memory", capability: e.name, summary: "A memory the host provides." });
      extGrants.add(e.name);
    } else foreign.push({ module: i.module, name: i.name, kind: i.kind });
  }
  const memories = [
    ...info.imports.flatMap((i) => (i.kind === "memory" ? [{ ...i.memory, imported: true }] : [])),
    ...info.memories.map((m) => ({ ...m, imported: false })),
  ];
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
    extensions,
    extensionGrants: collapseGrants(extGrants, byName),
    foreign,
    exports: info.exports.map((e) => ({ name: e.name, kind: e.kind })),
    memories,
    tables,
    surface: seen.size,
    total: SYSCALLS.length,
    entry: exportNames.has("_start") ? "command" : exportNames.has("_initialize") ? "reactor" : "library",
  };
}

/** The grants to ask for: an extension's name when all its capabilities are needed, else the single ones. */
function collapseGrants(needed: ReadonlySet<string>, byName: ReadonlyMap<string, Extension<any, any>>): string[] {
  const out = new Set<string>();
  for (const cap of needed) {
    const ext = byName.get(cap.split("/")[0]!);
    out.add(ext && ext.capabilities.every((c) => needed.has(c) || c === ext.name) ? ext.name : cap);
  }
  return [...out].sort();
}
