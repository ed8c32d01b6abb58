/**
 * WebAssembly binary reader: module structure without instantiating it.
 *
 * Defensive by construction: every section is read through a ByteReader
 * bounded to that section, every count is checked against the bytes left
 * (an entry is never smaller than a few bytes) and against V8's own maxima,
 * and code bodies are only located, not decoded, until someone asks. So a
 * hostile module costs time proportional to its size and fails with a
 * WasmFormatError that names the section and offset.
 */
import { ByteReader } from "./binary.js";
import { WasmFormatError, WasmUnsupportedError } from "./errors.js";
import { skipConstExpr, InstructionDecoder } from "./instructions.js";

export type ValType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref";
export type ExternKind = "function" | "table" | "memory" | "global" | "tag";

export interface FuncType {
  params: ValType[];
  results: ValType[];
}

/** Limits of a memory (in 64 KiB pages) or a table (in elements). */
export interface Limits {
  min: number;
  max: number | undefined;
  shared: boolean;
  /** memory64 (or table64): addresses are i64. */
  is64: boolean;
}

export interface TableType {
  refType: ValType;
  limits: Limits;
}

export interface GlobalType {
  valType: ValType;
  mutable: boolean;
}

interface ImportBase {
  module: string;
  name: string;
  /** Index in its kind's index space (imports come first in every space). */
  index: number;
  /** Offset of the import entry, for messages. */
  offset: number;
}
export type Import =
  | (ImportBase & { kind: "function"; typeIndex: number })
  | (ImportBase & { kind: "table"; table: TableType })
  | (ImportBase & { kind: "memory"; memory: Limits })
  | (ImportBase & { kind: "global"; global: GlobalType })
  | (ImportBase & { kind: "tag"; typeIndex: number });

export interface Export {
  name: string;
  kind: ExternKind;
  index: number;
}

export interface SectionInfo {
  id: number;
  /** "type", "import", ... or, for a custom section, `custom:<name>`. */
  name: string;
  /** Offset of the section id byte. */
  offset: number;
  /** Offset of the first content byte (after the size). */
  contentOffset: number;
  /** Content size in bytes. */
  size: number;
}

export interface CustomSection {
  name: string;
  /** Offset of the payload after the name. */
  offset: number;
  size: number;
}

/** Where a function body lies; decode it with `readFunctionBody`. */
export interface CodeBody {
  /** Offset of the body (its locals vector), after the size field. */
  offset: number;
  size: number;
}

export interface NameInfo {
  module: string | undefined;
  /** Function index (imports included) -> name. */
  functions: Map<number, string>;
  globals: Map<number, string>;
}

export interface ModuleInfo {
  byteLength: number;
  sections: SectionInfo[];
  types: FuncType[];
  imports: Import[];
  importedFunctionCount: number;
  importedTableCount: number;
  importedMemoryCount: number;
  importedGlobalCount: number;
  importedTagCount: number;
  /** Type index of each defined function, in order. */
  functions: number[];
  tables: TableType[];
  memories: Limits[];
  globals: GlobalType[];
  tagCount: number;
  exports: Export[];
  start: number | undefined;
  elementSegmentCount: number;
  dataSegmentCount: number;
  /** Value of the datacount section, when present. */
  dataCount: number | undefined;
  codeBodies: CodeBody[];
  customSections: CustomSection[];
  names: NameInfo;
  /** Why the name section was ignored (it is advisory: a bad one never fails a module). */
  nameSectionError: string | undefined;
}

/**
 * Maxima V8 itself enforces (src/wasm/wasm-limits.h, kV8MaxWasm*, as in
 * Node 20's V8 11.3); a count above these can never compile.
 */
export const ENGINE_MAXIMA = {
  types: 1_000_000,
  functions: 1_000_000,
  imports: 100_000,
  exports: 100_000,
  globals: 1_000_000,
  tags: 1_000_000,
  dataSegments: 100_000,
  elementSegments: 10_000_000,
  tableInitEntries: 10_000_000,
  tables: 100_000,
  memories: 100,
  params: 1_000,
  results: 1_000,
  localsPerFunction: 50_000,
  functionBodyBytes: 7_654_321,
  moduleBytes: 1 << 30,
} as const;

export const SECTION_NAMES: Record<number, string> = {
  0: "custom",
  1: "type",
  2: "import",
  3: "function",
  4: "table",
  5: "memory",
  6: "global",
  7: "export",
  8: "start",
  9: "element",
  10: "code",
  11: "data",
  12: "datacount",
  13: "tag",
};

/** Required order of known sections (the tag section sits between memory and global). */
const SECTION_ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

const KINDS: ExternKind[] = ["function", "table", "memory", "global", "tag"];

/**
 * Reads a module's structure. Throws WasmFormatError (malformed or truncated
 * bytes) or WasmUnsupportedError (a proposal this reader does not know).
 */
export function readModuleInfo(bytes: Uint8Array): ModuleInfo {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("readModuleInfo expects a Uint8Array");
  const r = new ByteReader(bytes, 0, bytes.length, "header");
  readHeader(r);

  const info: ModuleInfo = {
    byteLength: bytes.length,
    sections: [],
    types: [],
    imports: [],
    importedFunctionCount: 0,
    importedTableCount: 0,
    importedMemoryCount: 0,
    importedGlobalCount: 0,
    importedTagCount: 0,
    functions: [],
    tables: [],
    memories: [],
    globals: [],
    tagCount: 0,
    exports: [],
    start: undefined,
    elementSegmentCount: 0,
    dataSegmentCount: 0,
    dataCount: undefined,
    codeBodies: [],
    customSections: [],
    names: { module: undefined, functions: new Map(), globals: new Map() },
    nameSectionError: undefined,
  };

  let lastRank = 0;
  let codeCount: number | undefined;
  while (!r.atEnd()) {
    const offset = r.pos;
    r.section = "header";
    const id = r.u8();
    const sectionName = SECTION_NAMES[id];
    if (sectionName === undefined) r.fail(`unknown section id ${id}`, offset);
    r.section = sectionName;
    const size = r.u32();
    const contentOffset = r.pos;
    const s = r.sub(size, sectionName);
    if (id !== 0) {
      const rank = SECTION_ORDER[id]!;
      if (rank <= lastRank) s.fail(`${sectionName} section is out of order or repeated`, offset);
      lastRank = rank;
    }
    let name = sectionName;
    switch (id) {
      case 0:
        name = "custom:" + readCustom(s, info);
        break;
      case 1:
        readTypes(s, info);
        break;
      case 2:
        readImports(s, info);
        break;
      case 3:
        readFunctions(s, info);
        break;
      case 4:
        readTables(s, info);
        break;
      case 5:
        readMemories(s, info);
        break;
      case 6:
        readGlobals(s, info);
        break;
      case 7:
        readExports(s, info);
        break;
      case 8:
        info.start = s.u32();
        break;
      case 9:
        // Segment contents are left to the engine; only the count matters here.
        info.elementSegmentCount = s.count("element segments", 1, ENGINE_MAXIMA.elementSegments);
        s.pos = s.end;
        break;
      case 10:
        codeCount = readCode(s, info);
        break;
      case 11:
        info.dataSegmentCount = s.count("data segments", 1, ENGINE_MAXIMA.dataSegments);
        s.pos = s.end;
        break;
      case 12:
        info.dataCount = s.u32();
        break;
      case 13:
        info.tagCount = s.count("tags", 2, ENGINE_MAXIMA.tags);
        for (let i = 0; i < info.tagCount; i++) {
          s.u8();
          s.u32();
        }
        break;
    }
    if (!s.atEnd()) s.fail(`${s.remaining} unexpected bytes at the end of the section`);
    info.sections.push({ id, name, offset, contentOffset, size });
  }

  const defined = info.functions.length;
  if ((codeCount ?? 0) !== defined) {
    throw new WasmFormatError(
      "code",
      info.sections.find((x) => x.id === 10)?.offset ?? bytes.length,
      `function section declares ${defined} functions but the code section has ${codeCount ?? 0} bodies`,
    );
  }
  return info;
}

function readHeader(r: ByteReader): void {
  const magic = r.bytesView(Math.min(4, r.remaining));
  if (magic.length < 4 || magic[0] !== 0 || magic[1] !== 0x61 || magic[2] !== 0x73 || magic[3] !== 0x6d) {
    if (magic.length < 4 && [0, 0x61, 0x73, 0x6d].slice(0, magic.length).every((b, i) => magic[i] === b)) {
      throw new WasmFormatError("header", magic.length, `expected ${4 - magic.length} more bytes of the magic number`, true);
    }
    r.fail("not a WebAssembly module (missing \\0asm magic number)", 0);
  }
  const version = r.bytesView(4);
  if (version[0] === 1 && version[1] === 0 && version[2] === 0 && version[3] === 0) return;
  if (version[2] === 1 && version[3] === 0) {
    r.fail("this is a WebAssembly component, not a core module", 4);
  }
  r.fail(`unsupported binary version ${Array.from(version).join(".")}`, 4);
}

function valType(r: ByteReader): ValType {
  const at = r.pos;
  const b = r.u8();
  switch (b) {
    case 0x7f: return "i32";
    case 0x7e: return "i64";
    case 0x7d: return "f32";
    case 0x7c: return "f64";
    case 0x7b: return "v128";
    case 0x70: return "funcref";
    case 0x6f: return "externref";
    case 0x63:
    case 0x64:
      throw new WasmUnsupportedError("typed function references", at, "reference value type");
  }
  return r.fail(`invalid value type 0x${b.toString(16)}`, at);
}

function refType(r: ByteReader): ValType {
  const at = r.pos;
  const t = valType(r);
  if (t !== "funcref" && t !== "externref") r.fail(`table element type must be a reference type, got ${t}`, at);
  return t;
}

function limits(r: ByteReader, kind: "memory" | "table"): Limits {
  const at = r.pos;
  const flags = r.u8();
  const allowed = kind === "memory" ? 0x07 : 0x05;
  if (flags & ~allowed) r.fail(`invalid ${kind} limits flags 0x${flags.toString(16)}`, at);
  const hasMax = (flags & 1) !== 0;
  const shared = (flags & 2) !== 0;
  const is64 = (flags & 4) !== 0;
  if (shared && !hasMax) r.fail("a shared memory must declare a maximum", at);
  const min = is64 ? r.u64() : r.u32();
  const max = hasMax ? (is64 ? r.u64() : r.u32()) : undefined;
  if (max !== undefined && max < min) r.fail(`${kind} maximum ${max} is below its minimum ${min}`, at);
  return { min, max, shared, is64 };
}

function globalType(r: ByteReader): GlobalType {
  const t = valType(r);
  const at = r.pos;
  const m = r.u8();
  if (m > 1) r.fail(`invalid global mutability 0x${m.toString(16)}`, at);
  return { valType: t, mutable: m === 1 };
}

function readTypes(r: ByteReader, info: ModuleInfo): void {
  const n = r.count("types", 3, ENGINE_MAXIMA.types);
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const form = r.u8();
    if (form !== 0x60) {
      if (form === 0x4e || form === 0x4f || form === 0x50 || form === 0x5e || form === 0x5f)
        throw new WasmUnsupportedError("garbage collection", at, `type form 0x${form.toString(16)}`);
      r.fail(`type ${i} is not a function type (form 0x${form.toString(16)})`, at);
    }
    const np = r.count("parameters", 1, ENGINE_MAXIMA.params);
    const params: ValType[] = [];
    for (let j = 0; j < np; j++) params.push(valType(r));
    const nr = r.count("results", 1, ENGINE_MAXIMA.results);
    const results: ValType[] = [];
    for (let j = 0; j < nr; j++) results.push(valType(r));
    info.types.push({ params, results });
  }
}

function checkTypeIndex(r: ByteReader, info: ModuleInfo, index: number, at: number): void {
  if (index >= info.types.length) r.fail(`type index ${index} out of range (${info.types.length} types)`, at);
}

function readImports(r: ByteReader, info: ModuleInfo): void {
  const n = r.count("imports", 4, ENGINE_MAXIMA.imports);
  for (let i = 0; i < n; i++) {
    const offset = r.pos;
    const module = r.name();
    const name = r.name();
    const kindAt = r.pos;
    const kind = r.u8();
    const base = { module, name, offset };
    switch (kind) {
      case 0: {
        const at = r.pos;
        const typeIndex = r.u32();
        checkTypeIndex(r, info, typeIndex, at);
        info.imports.push({ ...base, kind: "function", index: info.importedFunctionCount++, typeIndex });
        break;
      }
      case 1: {
        const rt = refType(r);
        info.imports.push({ ...base, kind: "table", index: info.importedTableCount++, table: { refType: rt, limits: limits(r, "table") } });
        break;
      }
      case 2:
        info.imports.push({ ...base, kind: "memory", index: info.importedMemoryCount++, memory: limits(r, "memory") });
        break;
      case 3:
        info.imports.push({ ...base, kind: "global", index: info.importedGlobalCount++, global: globalType(r) });
        break;
      case 4: {
        r.u8(); // attribute: 0 = exception
        const at = r.pos;
        const typeIndex = r.u32();
        checkTypeIndex(r, info, typeIndex, at);
        info.imports.push({ ...base, kind: "tag", index: info.importedTagCount++, typeIndex });
        break;
      }
      default:
        r.fail(`invalid import kind 0x${kind.toString(16)} for "${module}" "${name}"`, kindAt);
    }
  }
}

function readFunctions(r: ByteReader, info: ModuleInfo): void {
  const n = r.count("functions", 1, ENGINE_MAXIMA.functions - info.importedFunctionCount);
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const t = r.u32();
    checkTypeIndex(r, info, t, at);
    info.functions.push(t);
  }
}

function readTables(r: ByteReader, info: ModuleInfo): void {
  const n = r.count("tables", 3, ENGINE_MAXIMA.tables);
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    if (r.pos < r.end && r.bytes[r.pos] === 0x40) {
      // table with an explicit initializer (function references proposal)
      throw new WasmUnsupportedError("typed function references", at, "table initializer");
    }
    info.tables.push({ refType: refType(r), limits: limits(r, "table") });
  }
}

function readMemories(r: ByteReader, info: ModuleInfo): void {
  const n = r.count("memories", 2, ENGINE_MAXIMA.memories);
  for (let i = 0; i < n; i++) info.memories.push(limits(r, "memory"));
}

function readGlobals(r: ByteReader, info: ModuleInfo): void {
  const n = r.count("globals", 3, ENGINE_MAXIMA.globals);
  const decoder = new InstructionDecoder();
  for (let i = 0; i < n; i++) {
    info.globals.push(globalType(r));
    skipConstExpr(r, decoder);
  }
}

function readExports(r: ByteReader, info: ModuleInfo): void {
  const n = r.count("exports", 3, ENGINE_MAXIMA.exports);
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const name = r.name();
    if (seen.has(name)) r.fail(`duplicate export "${name}"`, at);
    seen.add(name);
    const kindAt = r.pos;
    const k = r.u8();
    const kind = KINDS[k];
    if (kind === undefined) r.fail(`invalid export kind 0x${k.toString(16)} for "${name}"`, kindAt);
    info.exports.push({ name, kind, index: r.u32() });
  }
}

function readCode(r: ByteReader, info: ModuleInfo): number {
  const n = r.count("function bodies", 2, ENGINE_MAXIMA.functions);
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const size = r.u32();
    if (size === 0) r.fail(`function body ${i} is empty`, at);
    if (size > ENGINE_MAXIMA.functionBodyBytes)
      r.fail(`function body ${i} is ${size} bytes, more than the maximum of ${ENGINE_MAXIMA.functionBodyBytes}`, at);
    const offset = r.pos;
    r.skip(size);
    info.codeBodies.push({ offset, size });
  }
  return n;
}

function readCustom(r: ByteReader, info: ModuleInfo): string {
  const name = r.name();
  const offset = r.pos;
  const size = r.remaining;
  info.customSections.push({ name, offset, size });
  if (name === "name") {
    try {
      readNameSection(new ByteReader(r.bytes, offset, offset + size, "name"), info.names, info);
    } catch (err) {
      if (!(err instanceof WasmFormatError)) throw err;
      info.nameSectionError = err.message;
    }
  }
  r.pos = r.end;
  return name;
}

/** Name section (appendix of the spec): module name, function names, global names. */
function readNameSection(r: ByteReader, names: NameInfo, info: ModuleInfo): void {
  while (!r.atEnd()) {
    const id = r.u8();
    const size = r.u32();
    const s = r.sub(size);
    if (id === 0) {
      names.module = s.name();
    } else if (id === 1 || id === 7) {
      const map = id === 1 ? names.functions : names.globals;
      const n = s.count("names", 2, ENGINE_MAXIMA.functions);
      for (let i = 0; i < n; i++) {
        const index = s.u32();
        map.set(index, s.name());
      }
    }
    // Other subsections (locals, labels, types, ...) are not needed here.
  }
  void info;
}

/** The body of defined function `definedIndex`: its local declarations and code range. */
export interface FunctionBody {
  /** Offset of the first instruction. */
  codeOffset: number;
  /** Offset just past the final `end`. */
  end: number;
  locals: { count: number; type: ValType }[];
  /** Declared locals, parameters excluded. */
  localCount: number;
}

/** Decodes a body's local declarations (not its instructions). */
export function readFunctionBody(bytes: Uint8Array, info: ModuleInfo, definedIndex: number): FunctionBody {
  const body = info.codeBodies[definedIndex];
  if (body === undefined) throw new RangeError(`no defined function ${definedIndex}`);
  const r = new ByteReader(bytes, body.offset, body.offset + body.size, "code");
  const n = r.count("local declarations", 2, ENGINE_MAXIMA.localsPerFunction);
  const locals: { count: number; type: ValType }[] = [];
  let localCount = 0;
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const count = r.u32();
    localCount += count;
    if (localCount > ENGINE_MAXIMA.localsPerFunction)
      r.fail(`function ${info.importedFunctionCount + definedIndex} declares more than ${ENGINE_MAXIMA.localsPerFunction} locals`, at);
    locals.push({ count, type: valType(r) });
  }
  return { codeOffset: r.pos, end: r.end, locals, localCount };
}

// ---- helpers ----------------------------------------------------------------

/** Number of functions in the function index space (imported + defined). */
export function functionCount(info: ModuleInfo): number {
  return info.importedFunctionCount + info.functions.length;
}

/** Type of function `index` (imports first), or undefined if out of range. */
export function funcType(info: ModuleInfo, index: number): FuncType | undefined {
  if (index < info.importedFunctionCount) {
    let seen = 0;
    for (const imp of info.imports) {
      if (imp.kind !== "function") continue;
      if (seen++ === index) return info.types[imp.typeIndex];
    }
    return undefined;
  }
  const t = info.functions[index - info.importedFunctionCount];
  return t === undefined ? undefined : info.types[t];
}

export type FunctionImport = Extract<Import, { kind: "function" }> & { type: FuncType };

/** Imported functions in index order, each with its signature. */
export function importedFunctions(info: ModuleInfo): FunctionImport[] {
  const out: FunctionImport[] = [];
  for (const imp of info.imports) {
    if (imp.kind === "function") out.push({ ...imp, type: info.types[imp.typeIndex]! });
  }
  return out;
}

/** Imported memories (the host must create these, with its own maximum). */
export function importedMemories(info: ModuleInfo): Extract<Import, { kind: "memory" }>[] {
  return info.imports.filter((i): i is Extract<Import, { kind: "memory" }> => i.kind === "memory");
}

/** Name of function `index` from the name section, or undefined. */
export function functionName(info: ModuleInfo, index: number): string | undefined {
  return info.names.functions.get(index);
}

/** Name of function `index`, falling back to `func[index]` (V8's own notation). */
export function functionDisplayName(info: ModuleInfo | undefined, index: number): string {
  return (info && functionName(info, index)) ?? `func[${index}]`;
}

/** The export called `name`, optionally of a given kind. */
export function findExport(info: ModuleInfo, name: string, kind?: ExternKind): Export | undefined {
  return info.exports.find((e) => e.name === name && (kind === undefined || e.kind === kind));
}

/** Human-readable signature, `(i32, i64) -> (i32)`. */
export function formatFuncType(t: FuncType): string {
  return `(${t.params.join(", ")}) -> (${t.results.join(", ")})`;
}
