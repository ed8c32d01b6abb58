/**
 * What the image layer needs to know about a module: does it compile, what
 * does it import and export. Compiling (not just parsing) at build time means
 * an image never holds a module the engine would refuse at run time.
 */
import { ImageError } from "./errors.js";
import { compileChecked, WasmError } from "../wasm/index.js";

export interface ModuleImport {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
}

export interface ModuleExport {
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
}

export interface ModuleSummary {
  imports: ModuleImport[];
  exports: ModuleExport[];
}

/**
 * Checks and compiles `bytes` exactly as the runner will (the wasm layer's
 * bounds, then the engine); throws `module_invalid` naming `what` and why.
 */
export async function describeModule(bytes: Uint8Array, what: string): Promise<ModuleSummary> {
  let info;
  try {
    ({ info } = await compileChecked(bytes));
  } catch (err) {
    if (err instanceof WasmError) throw new ImageError("module_invalid", `${what} is not a valid WebAssembly module: ${err.message}`);
    throw err;
  }
  return {
    imports: info.imports.map((i) => ({ module: i.module, name: i.name, kind: i.kind })),
    exports: info.exports.map((e) => ({ name: e.name, kind: e.kind })),
  };
}

/** Entry-kind checks: a command exports `_start`, a reactor exports every function it lists. */
export function entryProblems(summary: ModuleSummary, entry: "command" | "reactor", exports: readonly string[]): string[] {
  const fns = new Set(summary.exports.filter((e) => e.kind === "function").map((e) => e.name));
  const out: string[] = [];
  if (entry === "command" && !fns.has("_start")) {
    out.push(`entry = "command" needs an exported _start function, and the module has none${fns.has("_initialize") ? " (it exports _initialize: set entry = \"reactor\")" : ""}`);
  }
  if (entry === "reactor") {
    const missing = exports.filter((e) => !fns.has(e));
    if (missing.length > 0) out.push(`module.exports lists ${missing.join(", ")}, which the module does not export as functions (it exports: ${[...fns].join(", ") || "none"})`);
  }
  return out;
}
