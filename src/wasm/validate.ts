/**
 * Structural bounds on a module, checked before V8 sees it.
 *
 * They follow V8's own (src/wasm/wasm-limits.h, kV8MaxWasm*: a module above
 * them never compiles anyway), except where a bound protects the host from a
 * module that costs far more than its size: compile time and code space
 * (module bytes, nesting depth) or host memory *per instance* (exports,
 * tables, tags; measured on Node 20, see docs/wasm.md). Every bound is an
 * option, and a module above one is refused with a WasmLimitError naming it.
 * The check reads the structure (bounded by the byte size) and decodes every
 * code body once, iteratively, for locals and block nesting: time and memory
 * are linear in the module size, whatever the module declares.
 */
import { ByteReader } from "./binary.js";
import { WasmCompileError, WasmError, WasmLimitError, hex } from "./errors.js";
import { Flow, InstructionDecoder } from "./instructions.js";
import { ENGINE_MAXIMA, functionDisplayName, readFunctionBody, readModuleInfo, type ModuleInfo } from "./reader.js";

/** Structural bounds on a module. Each is a count or a byte size; see DEFAULT_MODULE_LIMITS. */
export interface ModuleLimits {
  /** Size of the module file in bytes. Ours (V8: 1 GiB): compile time and code space grow with it. */
  maxModuleBytes: number;
  /** V8's kV8MaxWasmTypes. */
  maxTypes: number;
  /** Functions in the index space (imported + defined); V8's kV8MaxWasmFunctions. */
  maxFunctions: number;
  /** V8's kV8MaxWasmImports. */
  maxImports: number;
  /** Ours (V8: 100,000): every export costs each instance a wrapper (100,000 exports: ~13 MB and ~0.5 s per instance). */
  maxExports: number;
  /** V8's kV8MaxWasmGlobals. */
  maxGlobals: number;
  /** Ours (V8: 100,000): every table is objects per instance (100,000 tables: ~54 MB per instance). */
  maxTables: number;
  /** Memories (imported + defined). Ours, one: the memory limit is per memory. */
  maxMemories: number;
  /** Exception tags. Ours (V8: 1,000,000): each is an object per instance (1,000,000 tags: ~26 MB per instance). */
  maxTags: number;
  /**
   * Initial size of any one table, in elements; V8's kV8MaxWasmTableInitEntries.
   * (What all tables may hold together is the instance's maxTableElements limit.)
   */
  maxInitialTableElements: number;
  /** V8's kV8MaxWasmDataSegments. */
  maxDataSegments: number;
  /** V8's bound on element segments (its maximum table size). */
  maxElementSegments: number;
  /** Size of one function body in bytes; V8's kV8MaxWasmFunctionSize. */
  maxFunctionBodyBytes: number;
  /** Declared locals of one function (parameters excluded); V8's kV8MaxWasmFunctionLocals. */
  maxLocalsPerFunction: number;
  /** Depth of nested block/loop/if/try in one function body. Ours: V8 has none, its compilers' stacks grow with it. */
  maxNestingDepth: number;
}

export const DEFAULT_MODULE_LIMITS: Readonly<ModuleLimits> = Object.freeze({
  maxModuleBytes: 128 * 1024 * 1024,
  maxTypes: ENGINE_MAXIMA.types,
  maxFunctions: ENGINE_MAXIMA.functions,
  maxImports: ENGINE_MAXIMA.imports,
  maxExports: 10_000,
  maxGlobals: ENGINE_MAXIMA.globals,
  maxTables: 100,
  maxMemories: 1,
  maxTags: 10_000,
  maxInitialTableElements: ENGINE_MAXIMA.tableInitEntries,
  maxDataSegments: ENGINE_MAXIMA.dataSegments,
  maxElementSegments: ENGINE_MAXIMA.elementSegments,
  maxFunctionBodyBytes: ENGINE_MAXIMA.functionBodyBytes,
  maxLocalsPerFunction: ENGINE_MAXIMA.localsPerFunction,
  maxNestingDepth: 10_000,
});

function resolveLimits(limits: Partial<ModuleLimits> | undefined): ModuleLimits {
  const out = { ...DEFAULT_MODULE_LIMITS, ...limits };
  for (const [key, value] of Object.entries(out)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`module limit ${key} must be a non-negative integer, got ${value}`);
  }
  return out;
}

function check(limit: keyof ModuleLimits, actual: number, limits: ModuleLimits, what: string): void {
  if (actual > limits[limit]) throw new WasmLimitError(limit, actual, limits[limit], what);
}

/**
 * Reads the module and enforces `limits` (defaults for the ones not given).
 * Throws WasmLimitError (a bound), WasmFormatError (malformed bytes) or
 * WasmUnsupportedError; returns the module's structure.
 */
export function checkModule(bytes: Uint8Array, limits?: Partial<ModuleLimits>): ModuleInfo {
  const l = resolveLimits(limits);
  check("maxModuleBytes", bytes.length, l, "module size in bytes");
  const info = readModuleInfo(bytes);
  check("maxTypes", info.types.length, l, "types");
  check("maxFunctions", info.importedFunctionCount + info.functions.length, l, "functions");
  check("maxImports", info.imports.length, l, "imports");
  check("maxExports", info.exports.length, l, "exports");
  check("maxGlobals", info.importedGlobalCount + info.globals.length, l, "globals");
  check("maxTables", info.importedTableCount + info.tables.length, l, "tables");
  check("maxMemories", info.importedMemoryCount + info.memories.length, l, "memories");
  check("maxTags", info.importedTagCount + info.tagCount, l, "tags");
  check("maxDataSegments", info.dataSegmentCount, l, "data segments");
  check("maxElementSegments", info.elementSegmentCount, l, "element segments");
  const tables = [...info.imports.flatMap((i) => (i.kind === "table" ? [i.table] : [])), ...info.tables];
  tables.forEach((t, i) => check("maxInitialTableElements", t.limits.min, l, `initial size of table ${i}`));
  scanCode(bytes, info, l);
  return info;
}

/** Decodes every body once: size, locals and nesting depth. */
function scanCode(bytes: Uint8Array, info: ModuleInfo, l: ModuleLimits): void {
  const decoder = new InstructionDecoder();
  for (let i = 0; i < info.codeBodies.length; i++) {
    const index = info.importedFunctionCount + i;
    const name = functionDisplayName(info, index);
    check("maxFunctionBodyBytes", info.codeBodies[i]!.size, l, `size of function ${name}`);
    const body = readFunctionBody(bytes, info, i);
    check("maxLocalsPerFunction", body.localCount, l, `locals of function ${name}`);
    const r = new ByteReader(bytes, body.codeOffset, body.end, "code");
    let depth = 1; // the function body itself
    let maxDepth = 1;
    while (depth > 0) {
      if (r.atEnd()) r.fail(`function ${name} ends without its final end`);
      switch (decoder.next(r)) {
        case Flow.Block:
        case Flow.Loop:
        case Flow.If:
        case Flow.Try:
          if (++depth > maxDepth) {
            maxDepth = depth;
            if (depth - 1 > l.maxNestingDepth)
              throw new WasmLimitError("maxNestingDepth", depth - 1, l.maxNestingDepth, `block nesting in function ${name} (at offset ${hex(r.pos)})`);
          }
          break;
        case Flow.End:
        case Flow.Delegate:
          depth--;
          break;
      }
    }
    if (!r.atEnd()) r.fail(`${r.remaining} bytes after the final end of function ${name}`);
  }
}

export interface CheckedModule {
  module: WebAssembly.Module;
  info: ModuleInfo;
}

/**
 * Enforces host bounds, then compiles with V8. Every failure is a WasmError:
 * WasmLimitError, WasmFormatError, WasmUnsupportedError, or WasmCompileError
 * carrying V8's message and offset.
 */
export async function compileChecked(bytes: Uint8Array, limits?: Partial<ModuleLimits>): Promise<CheckedModule> {
  const info = checkModule(bytes, limits);
  try {
    return { module: await WebAssembly.compile(bytes), info };
  } catch (err) {
    throw toCompileError(err, info);
  }
}

/** Same as compileChecked, synchronously (for small modules and worker threads). */
export function compileCheckedSync(bytes: Uint8Array, limits?: Partial<ModuleLimits>): CheckedModule {
  const info = checkModule(bytes, limits);
  try {
    return { module: new WebAssembly.Module(bytes), info };
  } catch (err) {
    throw toCompileError(err, info);
  }
}

/**
 * Turns V8's CompileError ("WebAssembly.compile(): Compiling function #3:"f"
 * failed: ... @+123") into a WasmCompileError that names the function.
 */
export function toCompileError(err: unknown, info?: ModuleInfo): WasmError {
  if (err instanceof WasmError) return err;
  if (!(err instanceof WebAssembly.CompileError) && !(err instanceof WebAssembly.LinkError)) {
    if (err instanceof RangeError) {
      // V8 reports resource exhaustion (e.g. out of memory while compiling) as RangeError.
      return new WasmCompileError(err.message, undefined, `the module could not be compiled: ${err.message}`);
    }
    throw err;
  }
  const engineMessage = err.message;
  let text = engineMessage.replace(/^WebAssembly\.\w+\(\): /, "");
  const at = /\s*@\+(\d+)\s*$/.exec(text);
  const offset = at ? Number(at[1]) : undefined;
  if (at) text = text.slice(0, at.index);
  const fn = /^Compiling function #(\d+)(?::"[^"]*")? failed: /.exec(text);
  if (fn && info) text = `function ${functionDisplayName(info, Number(fn[1]))} is invalid: ${text.slice(fn[0].length)}`;
  return new WasmCompileError(
    engineMessage,
    offset,
    `invalid WebAssembly module: ${text}${offset !== undefined ? ` (at offset ${hex(offset)})` : ""}`,
  );
}
